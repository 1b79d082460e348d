"""``--no-ui``: run a node without the console — events printed, commands read from stdin.

Events go to stdout, one line each: human-readable by default, one JSON object per line with
``--json`` (log records then become ``log`` events on stdout too, so stderr stays empty).
stdin EOF does not stop the node (it may run under a supervisor with stdin closed); SIGINT and
SIGTERM stop it cleanly with exit code 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any, TextIO

from node import events as ev
from node.assemble import assemble
from node.bridge import run_end_cause
from node.config import ConfigError, NodeConfig, resolve_node_config
from node.errors import NodeError
from node.runtime.logs import setup_logging
from node.sessions.views import short_peer

if TYPE_CHECKING:
    from node.runtime.node import NodeRuntime

logger = logging.getLogger(__name__)


def format_event(event: ev.Event) -> str:
    """One human-readable line (or a few, for command output) for an event."""
    d = event.to_dict()
    kind = d.pop("event")
    if isinstance(event, ev.CommandOutput):
        mark = "" if event.ok else "error: "
        return f"{mark}{event.text}" if event.text else ""
    if isinstance(event, ev.Log):
        return f"{event.level.lower():<7} {event.logger}: {event.message}"
    if isinstance(event, ev.Ready):
        return (
            f"ready {event.role} {event.name} {event.peer_id} listening on {' '.join(event.addrs)}"
        )
    if isinstance(event, ev.Message):
        return f"[{event.topic}] {event.sender[-6:]} {event.kind}: {event.text}"
    if isinstance(event, ev.Mesh | ev.Bootmesh):
        body = "; ".join(
            f"{t}: {','.join(p[-6:] for p in ps)}" for t, ps in sorted(event.topics.items())
        )
        return f"{kind} {body or '(empty)'}"
    if isinstance(event, ev.SlmChunk):
        return event.text if not event.done else ""
    if isinstance(event, ev.Error):
        return (
            f"error ({event.source}): {event.message}"
            if event.source
            else f"error: {event.message}"
        )
    if isinstance(event, ev.PeerJoined | ev.PeerLeft):
        verb = "joined" if isinstance(event, ev.PeerJoined) else "left"
        addr = f" {event.addr}" if isinstance(event, ev.PeerJoined) and event.addr else ""
        return f"peer {verb} {short_peer(event.peer_id)}{addr}"
    if isinstance(event, ev.PeerInfo):
        return format_peer_info(event)
    if isinstance(event, ev.Session):
        return format_session(event)
    if isinstance(event, ev.Result):
        return format_result_line(event)
    return f"{kind} " + " ".join(f"{key}={readable(value)}" for key, value in d.items())


def readable(value: object) -> str:
    """A value for a human: peer IDs shortened, lists comma-separated, maps as ``k: v`` pairs,
    never a Python repr."""
    if isinstance(value, str):
        return short_peer(value) or "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ",".join(readable(v) for v in value) or "(none)"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{readable(k)}: {readable(v)}" for k, v in value.items()) + "}"
    return str(value)


def format_peer_info(p: ev.PeerInfo) -> str:
    """``peer 5Jo32z provider-1: sim/honest (sim), 12.3 ms, connected`` (+ why no role)."""
    model = f"{p.model} ({p.backend})" if p.model and p.backend not in p.model else p.model
    parts = [part for part in (model, f"{p.rtt_ms:.1f} ms" if p.rtt_ms is not None else "") if part]
    if p.slots:
        parts.append(f"slots {p.slots_used}/{p.slots}")
    parts.append(p.state)
    if p.status:
        parts.append(p.status)
    name = f" {p.name}" if p.name else ""
    return f"peer {short_peer(p.peer_id)}{name}: " + ", ".join(parts)


def format_session(s: ev.Session) -> str:
    """``session task-1 stage execute (executor, leader …a1b2c3): joined 3, answers 1/2,
    scores 0/2``."""
    c = s.counts
    parts = [f"joined {c.get('joined', len(s.joined))}"]
    if s.executors:
        parts.append(f"answers {c.get('responses', 0)}/{c.get('responses_expected', 0)}")
        parts.append(f"scores {c.get('scores', 0)}/{c.get('scores_expected', 0)}")
    if s.winner:
        parts.append(f"winner {short_peer(s.winner)}")
    return (
        f"session {s.task} stage {s.stage} ({s.role}, leader {short_peer(s.leader)}): "
        + ", ".join(parts)
    )


def format_result_line(r: ev.Result) -> str:
    """``result task-1: winner …a1b2c3 score 0.83 (mean), 3 joined; averages …: 0.83, …``."""
    joined = f"{r.joined} of {r.requested} joined" if r.requested else f"{r.joined} joined"
    if r.winner is None:
        return f"result {r.task}: no winner ({r.reason or 'nothing could be ranked'}), {joined}"
    averages = ", ".join(f"{short_peer(p)}: {readable(a)}" for p, a in sorted(r.averages.items()))
    text = " ".join(r.text.split())
    text = text if len(text) <= 120 else text[:117] + "..."
    return (
        f"result {r.task}: winner {short_peer(r.winner)} score {readable(r.score)} "
        f"({r.aggregator}), {joined}; averages {averages}; answer: {text}"
    )


class EventPrinter:
    """An event sink writing to a text stream, one line per event, for pipes.

    Lines are collected and written (and flushed) once per event-loop turn: a session changes
    state many times in one turn and each write to a pipe is a syscall and a wake-up of the
    reader. Nothing waits: the write happens as soon as the current turn's callbacks are done.
    Without a running loop (start-up errors) each line is written at once; ``flush()`` writes
    whatever is pending (called on the way out).
    """

    def __init__(self, stream: TextIO, *, json_lines: bool) -> None:
        self.stream = stream
        self.json_lines = json_lines
        self._pending: list[str] = []

    def __call__(self, event: ev.Event) -> None:
        if self.json_lines:
            line = event.to_json()
        else:
            if isinstance(event, ev.SlmChunk):
                return  # the whole answer arrives as the command's output
            line = format_event(event)
            if not line:
                return
        self._pending.append(line + "\n")
        if len(self._pending) > 1:
            return  # a flush is already scheduled for this turn
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        loop.call_soon(self.flush)

    def flush(self) -> None:
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        try:
            self.stream.write(text)
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            pass  # stdout closed by the reader: keep running, nothing to print to


def run_headless(args: argparse.Namespace, role: str) -> int:
    """Entry of ``rnet node --no-ui`` / ``rnet bootstrap --no-ui``: returns the exit code."""
    try:
        config = resolve_node_config(args, role)
    except ConfigError as exc:
        print(f"rnet {role}: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_main(args, config))
    except KeyboardInterrupt:
        return 0


async def _main(args: argparse.Namespace, config: NodeConfig) -> int:
    printer = EventPrinter(sys.stdout, json_lines=config.json)
    try:
        node = assemble(args, config)
    except NodeError as exc:
        _fail(printer, str(exc), config.role)
        return 2
    runtime = node.runtime
    runtime.subscribe(printer)
    setup_logging(config.log_level, runtime=runtime if config.json else None)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    try:
        await node.start()
    except Exception as exc:
        await node.aclose()
        _fail(printer, str(exc), config.role)
        return 1

    checks = asyncio.create_task(node.probe_backend())
    try:
        await node.serve_gateway()
    except (ValueError, OSError) as exc:
        checks.cancel()
        await node.aclose()
        _fail(printer, f"--serve: {exc}", config.role)
        return 2

    lines: asyncio.Queue[str | None] = asyncio.Queue()
    threading.Thread(target=_read_stdin, args=(loop, lines), name="stdin", daemon=True).start()

    async def commands() -> None:
        while True:
            line = await lines.get()
            if line is None:
                logger.info("stdin closed; still running (stop with SIGINT/SIGTERM)")
                return
            if line.strip():
                await runtime.execute(line)

    command_task = asyncio.create_task(commands())
    code = 0
    try:
        code = await _until_stopped(runtime, stop, printer, config.role)
    finally:
        command_task.cancel()
        checks.cancel()
        logger.info("stopping")
        await node.aclose()
        printer.flush()
    return code


async def _until_stopped(
    runtime: NodeRuntime, stop: asyncio.Event, printer: EventPrinter, role: str
) -> int:
    """Wait for SIGINT/SIGTERM (exit 0) or for the node's trio run to end by itself: then say
    why and exit 1, so a supervisor restarts it -- never a process that stays up and serves
    nothing."""
    ended = runtime.bridge.run_ended()
    stopping = asyncio.ensure_future(stop.wait())
    waiting: set[asyncio.Future[Any]] = {stopping} if ended is None else {stopping, ended}
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if stop.is_set() or ended is None or not ended.done():
        return 0
    cause = run_end_cause(ended.result())
    logger.error("the node's network side stopped: %s", cause)
    _fail(printer, f"the node's network side stopped: {cause}", role, source="node")
    return 1


def _fail(printer: EventPrinter, message: str, role: str, source: str = "startup") -> None:
    if printer.json_lines:
        printer(ev.Error(message=message, source=source))
        printer.flush()
    else:
        print(f"rnet {role}: {message}", file=sys.stderr)


def _read_stdin(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    # A thread, because a blocking read works on every kind of stdin (tty, pipe, file).
    try:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line.rstrip("\n"))
    except (OSError, ValueError):
        pass
    try:
        loop.call_soon_threadsafe(lines.put_nowait, None)
    except RuntimeError:
        pass  # the loop is already closed
