"""``rnet sim``: the Byzantine experiment (issue 16.6), a tool, not a protocol rule.

Drives the sans-IO session machines of :mod:`protocol.session` with a simulated in-memory
network and clock (:mod:`node.simulate.network`), peers of known quality and behaviour
(:mod:`node.simulate.world`), the reputation ledger of :mod:`protocol.reputation`, and reports
how each aggregator fares (:mod:`node.simulate.experiment`, :mod:`node.simulate.report`).
Imports no libp2p, trio or Textual.

For the ``rnet`` command line: :func:`configure` adds the flags, :func:`run` runs it (the same
pair every subcommand module provides); ``python -m node.simulate`` runs it standalone.
"""

from node.simulate.cli import configure, main, run

__all__ = ["configure", "main", "run"]
