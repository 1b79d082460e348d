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
from typing import TextIO

from node import events as ev
from node.assemble import assemble
from node.config import ConfigError, NodeConfig, resolve_node_config
from node.errors import NodeError
from node.runtime.logs import setup_logging

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
    parts = []
    for key, value in d.items():
        if isinstance(value, str) and len(value) > 40 and key in ("peer_id", "sender", "leader"):
            value = value[-6:]
        parts.append(f"{key}={value}")
    return f"{kind} " + " ".join(parts)


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
    try:
        await stop.wait()
    finally:
        command_task.cancel()
        checks.cancel()
        logger.info("stopping")
        await node.aclose()
        printer.flush()
    return 0


def _fail(printer: EventPrinter, message: str, role: str) -> None:
    if printer.json_lines:
        printer(ev.Error(message=message, source="startup"))
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
