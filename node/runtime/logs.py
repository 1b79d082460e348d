"""Where the node's log records go: ``log`` events (console, ``--json``), a file, or stderr."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from node import events as ev
from node.runtime.bus import EventBus


class EventLogHandler(logging.Handler):
    """Log records -> ``log`` events (the console's log pane; ``--json`` stdout)."""

    def __init__(self, bus: EventBus, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.bus = bus

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                message += f" ({record.exc_info[0].__name__}: {record.exc_info[1]})"
            self.bus.emit(ev.Log(level=record.levelname, logger=record.name, message=message))
        except Exception:
            self.handleError(record)


_LOG_SETUP: str | None = None
QUIET_LIBRARIES = ("httpx", "httpcore")


def setup_logging(
    level: str = "info",
    *,
    runtime: EventBus | None = None,
    stream: TextIO | None = None,
    log_file: str | None = None,
) -> None:
    """Route all logging (libp2p's included) to one place; nothing else writes to stderr.

    ``runtime`` (anything with ``emit``: the runtime or its bus): log records become ``log``
    events; ``log_file``: appended to a file; otherwise ``stream`` (default stderr) gets plain
    lines. Call it again after libp2p is imported — ``NodeRuntime.start`` does — because
    importing libp2p resets its loggers (pitfall 8).
    """
    global _LOG_SETUP
    handlers: list[logging.Handler] = []
    if runtime is not None:
        handlers.append(EventLogHandler(runtime))
    if log_file is not None:
        fh = logging.FileHandler(log_file, encoding="utf-8")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handlers.append(fh)
    if not handlers:
        sh = logging.StreamHandler(stream if stream is not None else sys.stderr)
        sh.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        handlers.append(sh)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # warnings.warn -> logging, not raw stderr
    _LOG_SETUP = level
    # The model client logs every HTTP request at INFO: only on debug.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(
            logging.DEBUG if level.lower() == "debug" else logging.WARNING
        )
    tame_libp2p_logging()


def tame_libp2p_logging() -> None:
    """pitfall 8: libp2p's loggers get no handler and propagate=False at import, so Python's
    last-resort handler prints its warnings raw to stderr. Send them through ours instead."""
    if "libp2p" not in sys.modules:
        return
    verbose = _LOG_SETUP == "debug"
    lg = logging.getLogger("libp2p")
    lg.handlers.clear()
    lg.propagate = True
    # libp2p logs ordinary churn as WARNING and ERROR (a peer going away, every failed dial or
    # handshake, a multi-line "Failed to open stream" block whenever a peer exits): we report
    # what matters ourselves (unreachable bootstrap, wrong peer ID), so it shows only on debug.
    lg.setLevel(logging.INFO if verbose else logging.CRITICAL)
    for name, child in list(logging.root.manager.loggerDict.items()):
        if name.startswith("libp2p.") and isinstance(child, logging.Logger):
            child.setLevel(logging.NOTSET)  # some set their own level at import: ours governs


@contextmanager
def carry_on(what: str) -> Iterator[None]:
    """One step of a background loop: an unexpected error is logged and the loop carries on
    (no peer input may end a node's network side)."""
    try:
        yield
    except Exception:
        logging.getLogger("node.runtime").exception("%s failed", what)
