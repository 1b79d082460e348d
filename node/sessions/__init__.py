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

import argparse
from pathlib import Path
from typing import Protocol

from node.errors import NodeError
from node.sessions.commands import register_session_commands
from node.sessions.engine import SessionEngine, new_task_id
from node.sessions.live import FailureCode, LiveSession, SessionFailed
from node.sessions.options import (
    DEFAULT_PROMPT,
    SessionOptions,
    add_session_flags,
    options_from_args,
)
from node.sessions.ports import SessionHost
from node.sessions.views import format_result, result_event, snapshot_event
from node.slm.base import Backend
from node.store import Store

__all__ = [
    "DEFAULT_PROMPT",
    "AttachableRuntime",
    "FailureCode",
    "LiveSession",
    "SessionEngine",
    "SessionFailed",
    "SessionHost",
    "SessionOptions",
    "add_session_flags",
    "attach_sessions",
    "format_result",
    "new_task_id",
    "options_from_args",
    "register_session_commands",
    "result_event",
    "snapshot_event",
]


class _DataDirConfig(Protocol):
    data_dir: Path


class AttachableRuntime(SessionHost, Protocol):
    """A runtime with its configuration, and a declared place for its engine (the gateway and
    ``rnet pipe`` find the engine there until ``node/assemble.py`` hands it to them)."""

    config: _DataDirConfig
    sessions: SessionEngine | None


def attach_sessions(
    runtime: AttachableRuntime, backend: Backend | None, args: argparse.Namespace | None = None
) -> SessionEngine:
    """The engine of a provider node, with its store in the node's data dir, attached to the
    runtime (before ``runtime.start``) and returned. NodeError for bad session flags."""
    try:
        options = options_from_args(args) if args is not None else SessionOptions()
    except ValueError as exc:
        raise NodeError(str(exc)) from None
    engine = SessionEngine(runtime, backend, Store.in_data_dir(runtime.config.data_dir), options)
    engine.attach()
    runtime.sessions = engine
    return engine
