"""One session as this node runs it (:class:`LiveSession`), and how a ``pipe`` can fail."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, TypeAlias

import trio

from protocol.effects import AbortCause, Publish, Subscribe, Unsubscribe

if TYPE_CHECKING:
    from node import events as ev
    from protocol.effects import SessionSnapshot
    from protocol.session import LeaderSession, ParticipantSession

#: The network effects, carried out in order by the session's sender task.
NetOp: TypeAlias = Publish | Subscribe | Unsubscribe
StageCallback = Callable[[str], None]


class FailureCode(StrEnum):
    NOT_ENOUGH_PROVIDERS = "not_enough_providers"
    DEADLINE = "deadline"
    EMPTY_RESULT = "empty_result"
    ABORTED = "aborted"
    UNAVAILABLE = "unavailable"
    BAD_INPUT = "bad_input"
    INVALID_OUTPUT = "invalid_output"  # every answer broke the requested format/tools


class SessionFailed(Exception):
    """A session ended without a winner. ``code`` says why (:class:`FailureCode`);
    ``str()`` is one line for the user."""

    def __init__(self, reason: str, code: str = FailureCode.ABORTED, task: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.task = task


def pipe_outcome(live: LiveSession, task: str, timed_out: bool, timeout_s: float) -> ev.Result:
    """A pipe session that ended: its ``result`` event, or the :class:`SessionFailed` saying why."""
    if timed_out and live.result_event is None:
        raise SessionFailed(
            f"session {task} passed its {timeout_s:g}s timeout", FailureCode.DEADLINE, task
        )
    evt = live.result_event
    if evt is None or evt.winner is None:
        reason = live.abort_reason or "no executor could be ranked"
        code = {
            AbortCause.NOT_ENOUGH_PARTICIPANTS: FailureCode.NOT_ENOUGH_PROVIDERS,
            AbortCause.INVALID_ANSWERS: FailureCode.INVALID_OUTPUT,  # all broke the format asked
        }.get(live.abort_cause, FailureCode.EMPTY_RESULT)  # type: ignore[arg-type]
        raise SessionFailed(f"session {task}: {reason}", code, task)
    return evt


@dataclass
class LiveSession:
    """One session on this node: its machine, its tasks, and what the engine remembers.
    Times (``created_ms``, ``stage_times``) are on the monotonic clock (``ports.mono_ms``)."""

    task: str
    machine: LeaderSession | ParticipantSession
    is_leader: bool
    created_ms: int
    wake: trio.Event = field(default_factory=trio.Event)
    done: trio.Event = field(default_factory=trio.Event)
    outbox: trio.MemorySendChannel[NetOp] | None = None
    outbox_drained: trio.Event = field(default_factory=trio.Event)
    nursery: trio.Nursery | None = None
    last_snapshot: SessionSnapshot | None = None
    stage_times: dict[str, int] = field(default_factory=dict)
    result_event: ev.Result | None = None
    abort_reason: str | None = None
    abort_cause: AbortCause | None = None
    on_stage: StageCallback | None = None

    @property
    def finished(self) -> bool:
        return self.machine.finished
