"""``rnet pipe N "prompt"``: a one-shot leader. Start a node, join the swarm through the bootstrap,
run one session, print its result, exit.

Exit 0 with a winner; otherwise one line saying why (not enough participants, no usable answer,
timeout) and exit 1 (2 for bad flags). Never runs past ``--timeout``: the session's deadlines are
fitted into it and the node is torn down within it. The pipe's node leads only; it takes no role
in its own session nor in anyone else's.

Light at import time (``rnet --help`` imports it): the node (trio, the runtime) is imported
by :func:`run` only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import sys
import time
from dataclasses import replace

from node.config import ConfigError, NodeConfig, add_node_flags, resolve_node_config
from node.guard_flags import add_guard_flags
from node.sessions.options import DEFAULT_PROMPT, add_session_flags
from node.settings import default_data_dir

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 60.0
# Time kept back from --timeout to close the node (sockets, trio) before the bound.
CLOSE_RESERVE_S = 1.5


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "providers", type=int, metavar="N", help="how many providers to wait for (>= 2)"
    )
    parser.add_argument(
        "prompt",
        nargs="?",
        default=None,
        help="the prompt the swarm answers (default: a sample question)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"give up after S seconds in all, start-up included (default: {DEFAULT_TIMEOUT_S:g})",
    )
    add_node_flags(parser)
    add_guard_flags(parser, bootstrap=False)
    add_session_flags(parser, participant=False)
    parser.epilog = (
        "On a terminal the session is drawn live (stage, joined, answers, scores) on stderr, then "
        "the result is printed; otherwise only the result (--json: one JSON line, with requested "
        "and joined) or one error line. Fewer joiners than N: the session runs with them and the "
        "result says so. Logs go to <data dir>/pipe.log unless --log-level is given."
    )


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    if args.providers < 2:
        return _fail(args, "a session needs at least 2 providers (1 executor, 1 verifier)", 2)
    if not math.isfinite(args.timeout) or args.timeout <= 0:
        return _fail(args, "--timeout must be a positive number of seconds", 2)
    try:
        config = resolve_node_config(args, "provider")
    except ConfigError as exc:
        return _fail(args, str(exc), 2)
    if not args.name and not args.data_dir:
        # Its own data dir (pipe, pipe-2, ...), so `rnet audit <task> --name pipe` finds it.
        config = replace(
            config, name="pipe", data_dir=default_data_dir("pipe"), name_explicit=False
        )
    try:
        return asyncio.run(_main(args, config, started))
    except KeyboardInterrupt:
        return 130


async def _main(args: argparse.Namespace, config: NodeConfig, started: float) -> int:
    # The node (trio, the runtime, the session engine) is heavy: loaded when a pipe runs, not
    # for `rnet --help`.
    from node import events as ev
    from node.assemble import assemble
    from node.errors import NodeError
    from node.pipe_progress import PipeProgress
    from node.runtime.logs import setup_logging
    from node.sessions import SessionFailed, format_result

    deadline = started + args.timeout
    if getattr(args, "log_level", None):
        setup_logging(args.log_level, stream=sys.stderr)
    else:
        # Quiet by contract (the result, or one line): logs go to the data dir.
        config.data_dir.mkdir(parents=True, exist_ok=True)
        setup_logging("info", log_file=str(config.data_dir / "pipe.log"))
    # What the bootstrap dials found (a wrong peer ID, refused): said in the one failure line.
    dialing = LastWarning()
    logging.getLogger("node.runtime.provider").addHandler(dialing)
    try:
        node = assemble(args, config)
    except (NodeError, ValueError) as exc:
        return _fail(args, str(exc), 2)
    runtime, engine = node.runtime, node.engine
    if engine is None:
        return _fail(args, "the sessions engine is not available", 2)
    engine.options = replace(engine.options, auto_join=False)  # lead only

    ready = asyncio.Event()
    runtime.subscribe(lambda e: ready.set() if isinstance(e, ev.Ready) else None)
    progress = None
    if not args.json and sys.stdout.isatty() and sys.stderr.isatty():
        progress = PipeProgress(sys.stderr, args.providers)
        runtime.subscribe(progress)
    try:
        try:
            await asyncio.wait_for(node.start(), timeout=_left(deadline))
            if not runtime.ready:
                await asyncio.wait_for(ready.wait(), timeout=_left(deadline))
        except TimeoutError:
            why = f": {dialing.last.removesuffix('; retrying')}" if dialing.last else ""
            return _fail(args, f"could not reach the bootstrap {config.bootstrap} in time{why}", 1)
        except (NodeError, OSError) as exc:
            return _fail(args, str(exc), 1)
        prompt = (args.prompt or "").strip() or DEFAULT_PROMPT
        try:
            result = await engine.run_pipe(
                prompt, args.providers, timeout_s=_left(deadline), aggregator=args.aggregator
            )
        except SessionFailed as exc:
            if progress is not None:
                progress.done()
            return _fail(args, exc.reason, 1, task=exc.task)
        finally:
            await asyncio.sleep(0)  # the last session events reach the progress line first
        if progress is not None:
            progress.done()
        if result.winner is None or not result.text:
            return _fail(args, f"session {result.task}: empty result", 1, task=result.task)
        # Fewer joiners than asked for: format_result's second line says so; --json has the
        # requested/joined fields.
        print(result.to_json() if args.json else format_result(result), flush=True)
        return 0
    finally:
        try:
            await asyncio.wait_for(
                node.aclose(), timeout=max(0.5, deadline + 1.0 - time.monotonic())
            )
        except TimeoutError:
            logger.warning("node did not close in time")
        except (asyncio.CancelledError, Exception):
            # The answer is already printed; a failing teardown must not change the exit code.
            logger.exception("node did not close cleanly")


class LastWarning(logging.Handler):
    """Keeps the last warning (or worse) of a logger, for a one-line failure message."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.last = record.getMessage()


def _left(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic() - CLOSE_RESERVE_S)


def _fail(args: argparse.Namespace, message: str, code: int, *, task: str = "") -> int:
    """One line, on stdout as JSON with --json, else on stderr."""
    if getattr(args, "json", False):
        print(
            json.dumps({"event": "error", "source": "pipe", "task": task, "message": message}),
            flush=True,
        )
    else:
        print(f"rnet pipe: {message}", file=sys.stderr, flush=True)
    return code
