"""What the session machines ask the runtime to do, and what they show.

Effects are frozen dataclasses returned by every input of :mod:`protocol.session`;
:class:`SessionSnapshot` is the plain view a ``session`` event is built from. Kept apart from
the machines so the runtime can import the vocabulary without the rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeAlias, TypedDict

from protocol.generation import GenOptions
from protocol.identity import peer_id_to_str
from protocol.messages import Body, Result

__all__ = [
    "TERMINAL",
    "AbortCause",
    "Aborted",
    "Effect",
    "Finished",
    "Generate",
    "Judge",
    "Notice",
    "Publish",
    "Rejected",
    "Released",
    "Role",
    "SessionSnapshot",
    "SnapshotDict",
    "Stage",
    "StageChanged",
    "Subscribe",
    "Unsubscribe",
]


class Stage(StrEnum):
    ADVERTISE = "advertise"
    EXECUTE = "execute"
    VERIFY = "verify"
    FINALIZE = "finalize"
    DONE = "done"
    ABORTED = "aborted"


TERMINAL = frozenset({Stage.DONE, Stage.ABORTED})


class Role(StrEnum):
    LEADER = "leader"
    PENDING = "pending"  # joined, roles not assigned yet
    EXECUTOR = "executor"
    VERIFIER = "verifier"
    OBSERVER = "observer"  # saw the assignment but has no role in it


# --- effects ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Publish:
    """Seal ``body`` for ``task`` with this node's signer and publish it on ``topic``."""

    topic: str
    task: str
    body: Body


@dataclass(frozen=True, slots=True)
class Subscribe:
    topic: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """The session no longer needs ``topic`` (the runtime may linger to let a publish drain)."""

    topic: str


@dataclass(frozen=True, slots=True)
class Generate:
    """Executor: run ``prompt`` on the local model; report via generation_done/failed.

    ``options``, ``format``, ``tools`` and ``tool_choice`` are the advertisement's (see
    :mod:`protocol.generation`): pass them to the model.
    """

    task: str
    prompt: str
    deadline_ms: int
    params: Mapping[str, str | int | float | bool | None] = field(default_factory=dict)
    options: GenOptions = field(default_factory=GenOptions)
    format: str | Mapping[str, Any] | None = None
    tools: tuple[Mapping[str, Any], ...] = ()
    tool_choice: str = "auto"


@dataclass(frozen=True, slots=True)
class Judge:
    """Verifier: score ``text`` (the answer to ``prompt`` under blind ``label``); report via
    judgement_done/failed with the same label."""

    task: str
    prompt: str
    label: str
    text: str
    deadline_ms: int


@dataclass(frozen=True, slots=True)
class StageChanged:
    task: str
    stage: Stage
    deadline_ms: int | None


@dataclass(frozen=True, slots=True)
class Finished:
    task: str
    result: Result


class AbortCause(StrEnum):
    """Why a session ended without a result, as a code (``reason`` is the sentence)."""

    OPERATOR = "operator"  # the leader's operator (or its pipe's timeout) aborted
    NOT_ENOUGH_PARTICIPANTS = "not_enough_participants"  # < 2 joined by the join deadline
    NO_RESPONSE = "no_response"  # no executor answered
    INVALID_ANSWERS = "invalid_answers"  # every answer broke the requested format/tools
    LEADER = "leader"  # a participant got the leader's abort
    GAVE_UP = "gave_up"  # a participant saw no result by the verify deadline


@dataclass(frozen=True, slots=True)
class Aborted:
    task: str
    reason: str
    cause: AbortCause = AbortCause.OPERATOR


@dataclass(frozen=True, slots=True)
class Released:
    """This node's part in the session is over (not picked, finished or aborted): free the
    model slot it held for the session now. Emitted once per participant that joined."""

    task: str
    reason: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A peer's message broke a rule; nothing was recorded. ``reason`` is a short code."""

    task: str
    reason: str
    sender: bytes
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should see that is not a peer's fault (local work failed or late)."""

    task: str
    text: str


Effect: TypeAlias = (
    Publish
    | Subscribe
    | Unsubscribe
    | Generate
    | Judge
    | StageChanged
    | Finished
    | Aborted
    | Released
    | Rejected
    | Notice
)


class SnapshotDict(TypedDict):
    """:meth:`SessionSnapshot.to_dict`: the same fields, peer IDs as base58 text."""

    task: str
    me: str
    leader: str
    role: str
    stage: str
    stage_deadline_ms: int | None
    prompt: str
    aggregator: str
    joined: list[str]
    requested: int
    models: dict[str, str]
    executors: list[str]
    verifiers: list[str]
    responses: dict[str, str | None]
    scores: dict[str, dict[str, float | None]]
    averages: dict[str, float | None]
    counts: dict[str, int]
    missing: list[str]
    winner: str | None
    winner_score: float | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    """Everything a ``session`` event shows. Peer IDs are bytes; ``None`` means "not (yet)"."""

    task: str
    me: bytes
    leader: bytes
    role: Role
    stage: Stage
    stage_deadline_ms: int | None
    prompt: str
    aggregator: str
    joined: tuple[bytes, ...]
    requested: int  # how many participants the leader asked for (0: not known yet / all)
    models: dict[bytes, str]  # joined peer -> model it announced
    executors: tuple[bytes, ...]
    verifiers: tuple[bytes, ...]
    responses: dict[bytes, str | None]  # executor -> text
    scores: dict[bytes, dict[bytes, float | None]]  # executor -> verifier -> score
    averages: dict[bytes, float | None]
    counts: dict[bytes, int]
    missing: tuple[bytes, ...]
    winner: bytes | None
    winner_score: float | None
    reason: str | None  # why it was aborted

    def to_dict(self) -> SnapshotDict:
        """JSON-able form for the ``session`` event: peer IDs as base58 text."""
        b58 = peer_id_to_str

        def peers(items: tuple[bytes, ...]) -> list[str]:
            return [b58(p) for p in items]

        return {
            "task": self.task,
            "me": b58(self.me),
            "leader": b58(self.leader),
            "role": str(self.role),
            "stage": str(self.stage),
            "stage_deadline_ms": self.stage_deadline_ms,
            "prompt": self.prompt,
            "aggregator": self.aggregator,
            "joined": peers(self.joined),
            "requested": self.requested,
            "models": {b58(p): m for p, m in self.models.items()},
            "executors": peers(self.executors),
            "verifiers": peers(self.verifiers),
            "responses": {b58(e): t for e, t in self.responses.items()},
            "scores": {
                b58(e): {b58(v): x for v, x in row.items()} for e, row in self.scores.items()
            },
            "averages": {b58(e): a for e, a in self.averages.items()},
            "counts": {b58(e): c for e, c in self.counts.items()},
            "missing": peers(self.missing),
            "winner": b58(self.winner) if self.winner is not None else None,
            "winner_score": self.winner_score,
            "reason": self.reason,
        }
