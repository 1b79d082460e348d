"""Sessions: Advertise -> Execute -> Verify -> Finalize over a running node.

Rooms (see node/README.md for the walk through one session):

- ``options``: :class:`SessionOptions` (deadlines, aggregator, split, auto-join) and its flags;
- ``ports``: what the engine needs from the runtime (:class:`SessionHost`), and the clocks;
- ``engine``: :class:`SessionEngine`, every session of the node; starts them, ``ack``,
  ``finalize``, ``run_pipe``;
- ``driver``: carries out a machine's typed effects (network, model calls, deadlines);
- ``live``: :class:`LiveSession` (one session's machine and tasks), :class:`SessionFailed`;
- ``views``: snapshots and results -> ``session``/``result`` events;
- ``transcript``: what goes to the store for ``rnet audit``;
- ``commands``: ``adv``, ``ack``, ``finalize``, ``pipe``, ``sessions``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from node.sessions.options import (
    DEFAULT_PROMPT,
    SessionOptions,
    add_session_flags,
    options_from_args,
)
from node.sessions.ports import SessionHost
from node.sessions.views import format_result, result_event, snapshot_event

if TYPE_CHECKING:
    from node.sessions.commands import register_session_commands
    from node.sessions.engine import SessionEngine, new_task_id
    from node.sessions.live import FailureCode, LiveSession, SessionFailed

__all__ = [
    "DEFAULT_PROMPT",
    "FailureCode",
    "LiveSession",
    "SessionEngine",
    "SessionFailed",
    "SessionHost",
    "SessionOptions",
    "add_session_flags",
    "format_result",
    "new_task_id",
    "options_from_args",
    "register_session_commands",
    "result_event",
    "snapshot_event",
]

# The engine's modules load trio; the command line reads the session flags (``options``) for
# ``rnet --help`` without them, so those names are loaded on first use (PEP 562).
_LAZY = {
    "SessionEngine": "node.sessions.engine",
    "new_task_id": "node.sessions.engine",
    "FailureCode": "node.sessions.live",
    "LiveSession": "node.sessions.live",
    "SessionFailed": "node.sessions.live",
    "register_session_commands": "node.sessions.commands",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
