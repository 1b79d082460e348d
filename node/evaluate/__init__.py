"""``rnet eval``: does the swarm beat one model? Questions with checkable answers, asked of the
swarm (its winner, each executor's own answer, a majority vote over them) and of a single model,
checked, and reported with intervals and paired tests.

Modules: :mod:`~node.evaluate.questions` (JSONL sets), :mod:`~node.evaluate.check` (answer
checkers), :mod:`~node.evaluate.templates` (the seeded generators, also used by the simulated
model to know the answers), :mod:`~node.evaluate.stats` (Wilson, McNemar, percentiles),
:mod:`~node.evaluate.predict` (what the simulation's parameters predict),
:mod:`~node.evaluate.runner` (the loop), :mod:`~node.evaluate.runs` (the SQLite store of runs),
:mod:`~node.evaluate.report` (table, JSON, chart), :mod:`~node.evaluate.command` (the CLI).
"""
