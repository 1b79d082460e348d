"""``rnet eval``: does the swarm beat one model?

Joins the swarm as a node of its own (like ``rnet pipe``), leads one session per question, and
compares the swarm's winner with a majority vote over the executors' answers, each executor
alone, and a single model. Results go to the runs store as they come; the report (markdown on
stdout, JSON and a PNG chart in the run's directory) is printed at the end, or again with
``--report RUN``.

Light at import time (``rnet --help`` imports it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node import events as ev

if TYPE_CHECKING:
    from node.evaluate.runs import Run, RunStore

logger = logging.getLogger(__name__)

DEFAULT_PROVIDERS = 6
DEFAULT_TIMEOUT_S = 120.0
# How long to wait at start for the swarm to show --providers providers.
PROVIDERS_WAIT_S = 30.0
# ... and for a --local swarm, which is known to be starting.
LOCAL_WAIT_S = 120.0
# How long joining the swarm (the bootstrap answering) may take.
START_TIMEOUT_S = 60.0


def configure(parser: argparse.ArgumentParser) -> None:
    from node.config import add_node_flags
    from node.sessions import add_session_flags

    parser.description = (
        "Ask the swarm questions with known answers, one session per question, and compare its "
        "winner with a majority vote over the executors' answers, each executor alone, and a "
        "single model. Prints a table (accuracy with 95% intervals, paired McNemar tests, "
        "latency, cost) and writes report.json and accuracy.png. A sim swarm is labelled "
        "SIMULATED."
    )
    parser.add_argument(
        "questions",
        nargs="?",
        default="all",
        metavar="SET|FILE",
        help="a shipped set (arithmetic, units, logic, smoke, all) or a JSONL file of "
        '{"question", "answer", "kind"} lines (default: all)',
    )
    e = parser.add_argument_group("evaluation")
    e.add_argument(
        "--providers",
        "-n",
        type=int,
        default=None,
        metavar="N",
        help=f"providers per session, as in `rnet pipe N` (default: --local's N, else "
        f"{DEFAULT_PROVIDERS})",
    )
    e.add_argument(
        "--local",
        type=int,
        default=None,
        metavar="N",
        help="start a swarm of N providers on this machine for the run (a bootstrap on a free "
        "port; each provider gets this command's model flags: --backend, --model, --sim-*), "
        "stopped at the end; logs in <data dir>/local/<RUN>/logs",
    )
    e.add_argument(
        "--limit", type=int, default=None, metavar="K", help="the first K questions only"
    )
    e.add_argument(
        "--single",
        default=None,
        metavar="MODEL",
        help="the single-model baseline: MODEL asked directly through this node's backend "
        "(--backend/--ollama-host; with --backend sim, MODEL is sim/<profile>). Default: one of "
        "each session's executors, drawn per question (no extra model call)",
    )
    e.add_argument(
        "--concurrency",
        type=int,
        default=1,
        metavar="K",
        help="sessions at once (default 1; a provider takes part in up to --max-sessions "
        "sessions at once, 4 by default)",
    )
    e.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of the draws (ties, which executor)"
    )
    e.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"bound for one session, seconds (default {DEFAULT_TIMEOUT_S:g})",
    )
    e.add_argument("--resume", default=None, metavar="RUN", help="continue an interrupted run")
    e.add_argument(
        "--report", default=None, metavar="RUN", help="print a stored run's report again and exit"
    )
    e.add_argument("--runs", action="store_true", help="list the stored runs and exit")
    e.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="where report.md/.json and accuracy.png go (default: <data dir>/reports/<RUN>/)",
    )
    e.add_argument(
        "--generate",
        default=None,
        metavar="KIND",
        help="print a generated set (arithmetic, units, logic) as JSONL and exit; with --count "
        "and --seed",
    )
    e.add_argument("--count", type=int, default=60, metavar="K", help="with --generate (60)")
    add_node_flags(parser)
    add_session_flags(parser, participant=False)
    for action in parser._actions:
        if "--json" in action.option_strings:
            action.help = "print the report as one JSON object instead of the markdown table"
        elif "--no-ui" in action.option_strings:
            action.help = argparse.SUPPRESS  # eval never shows a console


def run(args: argparse.Namespace) -> int:
    from node.config import ConfigError, default_data_dir, resolve_node_config
    from node.evaluate.local import LocalEvalSwarm
    from node.evaluate.questions import QuestionsError, dump, resolve
    from node.evaluate.runs import RunsError, RunStore

    if args.generate:
        from node.evaluate.templates import generate

        try:
            sys.stdout.write(dump(generate(args.generate, args.count, args.seed)))
        except ValueError as exc:
            return _fail(str(exc), 2)
        return 0
    if args.local is not None and args.local < 2:
        return _fail("--local must be at least 2", 2)
    args.providers = args.providers or args.local or DEFAULT_PROVIDERS
    for flag, value, low in (
        ("--providers", args.providers, 2),
        ("--concurrency", args.concurrency, 1),
    ):
        if value < low:
            return _fail(f"{flag} must be at least {low}", 2)
    if args.limit is not None and args.limit < 1:
        return _fail("--limit must be at least 1", 2)
    if not args.timeout > 0:
        return _fail("--timeout must be a positive number of seconds", 2)
    try:
        config = resolve_node_config(args, "provider")
    except ConfigError as exc:
        return _fail(str(exc), 2)
    if not args.name and not args.data_dir:
        config = replace(
            config, name="eval", data_dir=default_data_dir("eval"), name_explicit=False
        )
    try:
        store = RunStore.in_data_dir(config.data_dir)
    except RunsError as exc:
        return _fail(str(exc), 2)
    run_id = ""
    try:
        if args.runs:
            for r in store.list():
                state = "finished" if r.finished_ms else "unfinished"
                print(f"{r.id}  {r.settings.get('source')}  {state}")
            return 0
        if args.report:
            return _print_report(args, store.load(args.report), config.data_dir)
        if args.resume:
            existing = store.load(args.resume)
            run_id, questions = existing.id, existing.questions
            if existing.done >= set(range(len(questions))):  # nothing left: no need to join
                store.finish(run_id)
                return _print_report(args, store.load(run_id), config.data_dir)
        else:
            questions = resolve(args.questions)[: args.limit]
            run_id = store.new_id()
        local = None
        if args.local:
            local = LocalEvalSwarm(config.data_dir / "local" / run_id, args.local, args)
            config = replace(config, bootstrap=local.start())
        try:
            return asyncio.run(_main(args, config, store, run_id, questions))
        finally:
            if local is not None:
                local.stop()
    except (QuestionsError, RunsError) as exc:
        return _fail(str(exc), 2)
    except KeyboardInterrupt:
        print(f"\nrnet eval: interrupted; `rnet eval --resume {run_id}` continues", file=sys.stderr)
        return 130
    finally:
        store.close()


def _sim_flags(backend: Any) -> dict[str, Any] | None:
    if getattr(backend, "backend", None) != "sim":
        return None
    # The prediction assumes the swarm's providers run these same flags (see report.sim_setting).
    return {
        "profile": backend.profile,
        "p": backend.p,
        "q": backend.judge_q,
        "seed": backend.seed,
    }


async def _main(
    args: argparse.Namespace, config: Any, store: RunStore, run_id: str, questions: list[Any]
) -> int:
    from node.assemble import assemble
    from node.errors import NodeError
    from node.evaluate.runner import EvalSettings
    from node.runtime.logs import setup_logging

    if getattr(args, "log_level", None):
        setup_logging(args.log_level, stream=sys.stderr)
    else:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        setup_logging("info", log_file=str(config.data_dir / "eval.log"))
    try:
        node = assemble(args, config)
    except (NodeError, ValueError) as exc:
        return _fail(str(exc), 2)
    if node.engine is None:
        await node.aclose()
        return _fail("the sessions engine is not available", 2)
    node.engine.options = replace(node.engine.options, auto_join=False)  # lead only
    existing = store.load(run_id) if args.resume else None
    settings = (
        EvalSettings.from_dict(existing.settings)
        if existing
        else EvalSettings(
            source=args.questions,
            providers=args.providers,
            timeout_s=args.timeout,
            concurrency=args.concurrency,
            seed=args.seed,
            single=args.single,
            sim=_sim_flags(node.backend),
        )
    )
    if existing is None:
        store.create(run_id, settings.to_dict(), questions)
    ready = asyncio.Event()
    node.runtime.subscribe(lambda e: ready.set() if isinstance(e, ev.Ready) else None)
    try:
        async with node:
            if not node.runtime.ready:
                try:
                    await asyncio.wait_for(ready.wait(), timeout=START_TIMEOUT_S)
                except TimeoutError:
                    return _fail(f"could not reach the bootstrap {config.bootstrap} in time", 1)
            return await _evaluate_on(node, args, store, run_id, questions, settings)
    except (NodeError, OSError) as exc:
        return _fail(str(exc), 1)


async def _evaluate_on(
    node: Any,
    args: argparse.Namespace,
    store: RunStore,
    run_id: str,
    questions: list[Any],
    settings: Any,
) -> int:
    from node.evaluate.adapters import BackendSingle, EngineSwarm, wait_for_providers
    from node.evaluate.progress import Progress
    from node.evaluate.runner import SwarmMissing, evaluate
    from node.slm.base import SLMError
    from node.slm.config import backend_from_args

    single = None
    if settings.single:
        try:
            single = BackendSingle(backend_from_args(_single_args(args, settings.single), "single"))
            await single.backend.check()
        except SLMError as exc:
            return _fail(f"--single {settings.single}: {exc}", 2)
    done_records = store.load(run_id).records
    progress = Progress(len(questions), done_records)

    def sink(record: dict[str, Any]) -> None:
        store.add(run_id, record)
        progress.update(record)

    try:
        wait_s = LOCAL_WAIT_S if args.local else PROVIDERS_WAIT_S
        seen = await wait_for_providers(node.runtime, settings.providers, wait_s)
        if seen < settings.providers:
            print(
                f"rnet eval: {seen} provider(s) known after {wait_s:g}s, sessions want "
                f"{settings.providers}; trying anyway",
                file=sys.stderr,
                flush=True,
            )
        print(f"rnet eval: run {run_id}, {len(questions)} questions", file=sys.stderr, flush=True)
        try:
            await evaluate(
                questions,
                settings,
                EngineSwarm(node.runtime, node.engine),
                single,
                sink,
                done={r["idx"] for r in done_records},
            )
        except SwarmMissing as exc:
            progress.close()
            return _fail(f"{exc}; `rnet eval --resume {run_id}` continues once it is there", 1)
        progress.close()
        store.finish(run_id)
        return _print_report(args, store.load(run_id), node.runtime.config.data_dir)
    finally:
        if single is not None:
            await single.backend.aclose()


def _single_args(args: argparse.Namespace, model: str) -> argparse.Namespace:
    ns = argparse.Namespace(**vars(args))
    if model.startswith("sim/"):
        ns.backend, ns.sim_profile = "sim", model.removeprefix("sim/")
    else:
        ns.model = model
    return ns


def _print_report(args: argparse.Namespace, run: Run, data_dir: Path) -> int:
    from node.evaluate import report

    summary = report.summarize(run)
    out = args.out or Path(data_dir) / "reports" / run.id
    paths = report.write(summary, out)
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        print(report.markdown(summary), flush=True)
        print(f"report: {paths['json']}  chart: {paths['chart']}", flush=True)
    return 0


def _fail(message: str, code: int) -> int:
    print(f"rnet eval: {message}", file=sys.stderr, flush=True)
    return code
