"""What both session machines share: the stage tables, the state, deadlines, the receive gate.

The theory of operation is in :mod:`protocol.session`; the two machines in
:mod:`protocol.leader` and :mod:`protocol.participant`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from protocol.effects import (
    TERMINAL,
    Effect,
    Rejected,
    Role,
    SessionSnapshot,
    Stage,
    StageChanged,
)
from protocol.envelope import Envelope, validate_task
from protocol.errors import StateError
from protocol.identity import is_peer_id, short_id
from protocol.messages import MAX_PARTICIPANTS, MAX_REASON_CHARS, Advertise, Join, Response, Result
from protocol.structured import answer_problem

__all__ = [
    "DEFAULT_GRACE_MS",
    "LEADER_ACCEPTS",
    "LEADER_TRANSITIONS",
    "PARTICIPANT_ACCEPTS",
    "PARTICIPANT_TRANSITIONS",
    "Session",
    "clip",
]

logger = logging.getLogger(__name__)

DEFAULT_GRACE_MS = 5_000
# Messages that overtake the assignment are held this long (count), then refused.
MAX_EARLY = 4 * MAX_PARTICIPANTS


# --- transitions as data ------------------------------------------------------------------------
LEADER_TRANSITIONS: dict[Stage, dict[str, Stage]] = {
    Stage.ADVERTISE: {"assign": Stage.EXECUTE, "abort": Stage.ABORTED},
    Stage.EXECUTE: {
        "responses_complete": Stage.VERIFY,
        "finalize": Stage.DONE,
        "abort": Stage.ABORTED,
    },
    Stage.VERIFY: {
        "scores_complete": Stage.FINALIZE,
        "finalize": Stage.DONE,
        "abort": Stage.ABORTED,
    },
    Stage.FINALIZE: {"finalize": Stage.DONE, "abort": Stage.ABORTED},
    Stage.DONE: {},
    Stage.ABORTED: {},
}

PARTICIPANT_TRANSITIONS: dict[Stage, dict[str, Stage]] = {
    Stage.ADVERTISE: {
        "assign": Stage.EXECUTE,
        "release": Stage.ABORTED,  # joined, not picked: the session is over for this node
        "result": Stage.DONE,
        "abort": Stage.ABORTED,
        "give_up": Stage.ABORTED,
    },
    Stage.EXECUTE: {
        "items_complete": Stage.VERIFY,
        "result": Stage.DONE,
        "abort": Stage.ABORTED,
    },
    Stage.VERIFY: {"scores_complete": Stage.FINALIZE, "result": Stage.DONE, "abort": Stage.ABORTED},
    Stage.FINALIZE: {"result": Stage.DONE, "abort": Stage.ABORTED, "give_up": Stage.ABORTED},
    Stage.DONE: {},
    Stage.ABORTED: {},
}

_WORK = frozenset({"response", "score", "scores"})
LEADER_ACCEPTS: dict[Stage, frozenset[str]] = {
    Stage.ADVERTISE: frozenset({"join"}),
    Stage.EXECUTE: _WORK,
    Stage.VERIFY: _WORK,
    Stage.FINALIZE: _WORK,
    Stage.DONE: frozenset(),
    Stage.ABORTED: frozenset(),
}
_FROM_LEADER = frozenset({"advertise", "assign", "item", "reveal", "result", "abort"})
# Participants see joins, and without the hub responses and scores too (the node then routes the
# leader topic over the session topic): none of their business, taken and dropped.
_PASSING = frozenset({"join"}) | _WORK
_LIVE = _PASSING | frozenset({"item", "reveal", "result", "abort"})
PARTICIPANT_ACCEPTS: dict[Stage, frozenset[str]] = {
    Stage.ADVERTISE: _LIVE | {"assign"},  # items and reveals before the assignment are held
    Stage.EXECUTE: _LIVE,
    Stage.VERIFY: _LIVE,
    Stage.FINALIZE: _LIVE,
    Stage.DONE: frozenset(),
    Stage.ABORTED: frozenset(),
}


def unaccepted_reason(stage: Stage, kind: str) -> str:
    if kind in ("presence", "bootmesh"):
        return "wrong_topic"
    if stage in TERMINAL or kind == "join":
        return "late"
    if kind in _FROM_LEADER:
        return "not_leader"
    return "too_early"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Session:
    """State and plumbing shared by both machines."""

    _transitions: dict[Stage, dict[str, Stage]]
    _accepts: dict[Stage, frozenset[str]]

    def __init__(self, task: str, me: bytes, leader: bytes, advertise: Advertise) -> None:
        validate_task(task)
        if not is_peer_id(me) or not is_peer_id(leader):
            raise ValueError("me and leader must be Ed25519 peer-ID bytes")
        if not isinstance(advertise, Advertise):
            raise TypeError("advertise must be an Advertise body")
        self.task = task
        self.me = me
        self.leader = leader
        self.advertise = advertise
        self.prompt = advertise.prompt
        self.stage = Stage.ADVERTISE
        self.role = Role.PENDING
        self.started = False
        self.joined: dict[bytes, Join] = {}
        self.requested = 0
        self.executors: tuple[bytes, ...] = ()
        self.verifiers: tuple[bytes, ...] = ()
        # leader: executor -> why its response was dropped (not the format/tools asked): settled
        self.invalid: dict[bytes, str] = {}
        self.result: Result | None = None
        self.abort_reason: str | None = None
        # absolute deadlines in this node's clock, set as the stages begin
        self.join_deadline: int | None = None
        self.exec_deadline: int | None = None
        self.verify_deadline: int | None = None

    # -- public read side -----------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.stage in TERMINAL

    def next_deadline(self) -> int | None:
        """When ``tick`` must next be called (this node's clock); ``None`` once finished."""
        return None if self.finished else self._stage_deadline()

    def snapshot(self) -> SessionSnapshot:
        texts, matrix, averages, counts, missing = self._live_view()
        winner = winner_score = None
        if self.result is not None:
            averages, counts = dict(self.result.averages), dict(self.result.counts)
            matrix = {e: dict(r) for e, r in self.result.scores.items()}
            missing, winner, winner_score = (
                self.result.missing,
                self.result.winner,
                self.result.score,
            )
        return SessionSnapshot(
            task=self.task,
            me=self.me,
            leader=self.leader,
            role=self.role,
            stage=self.stage,
            stage_deadline_ms=self.next_deadline(),
            prompt=self.prompt,
            aggregator=self.advertise.aggregator,
            joined=tuple(self.joined),
            requested=self.requested,
            models={p: j.model for p, j in self.joined.items()},
            executors=self.executors,
            verifiers=self.verifiers,
            responses=texts,
            scores=matrix,
            averages=averages,
            counts=counts,
            missing=tuple(missing),
            winner=winner,
            winner_score=winner_score,
            reason=self.abort_reason,
        )

    # -- hooks ----------------------------------------------------------------------------------
    def _stage_deadline(self) -> int | None:
        raise NotImplementedError

    def _on_deadline(self, now_ms: int) -> list[Effect]:
        raise NotImplementedError

    def _live_view(
        self,
    ) -> tuple[
        dict[bytes, str | None],
        dict[bytes, dict[bytes, float | None]],
        dict[bytes, float | None],
        dict[bytes, int],
        tuple[bytes, ...],
    ]:
        """texts, matrix, averages, counts, missing as this machine knows them before a result."""
        raise NotImplementedError

    # -- shared machinery -----------------------------------------------------------------------
    def _go(self, trigger: str) -> StageChanged:
        target = self._transitions[self.stage].get(trigger)
        assert target is not None, f"{trigger!r} is not a transition out of {self.stage}"
        logger.debug("session %s: %s -%s-> %s", self.task, self.stage, trigger, target)
        self.stage = target
        return StageChanged(self.task, target, self.next_deadline())

    def _require_started(self) -> None:
        if not self.started:
            raise StateError("session not started: call start(now_ms) first")

    def _expire(self, now_ms: int) -> list[Effect]:
        """Run every deadline that passed. Each handler leaves its stage or moves the deadline
        later (a re-announcement), so this terminates."""
        effects: list[Effect] = []
        while not self.finished:
            deadline = self._stage_deadline()
            if deadline is None or now_ms < deadline:
                break
            before = self.stage
            effects += self._on_deadline(now_ms)
            assert self.stage != before or (self._stage_deadline() or 0) > deadline, (
                f"deadline handler stayed in {before}"
            )
        return effects

    def _exec_over(self) -> bool:
        return self.stage not in (Stage.ADVERTISE, Stage.EXECUTE)

    def _invalid_answer(self, env: Envelope) -> list[Effect] | None:
        """Drop a response that does not fit the advertisement's format/tools (issue 17)."""
        assert isinstance(env.body, Response)
        problem = answer_problem(self.advertise, env.body)
        if problem is None:
            return None
        self.invalid[env.sender] = problem
        return self._reject(env, "invalid_answer", clip(problem, MAX_REASON_CHARS))

    def _reject(self, env: Envelope, reason: str, detail: str) -> list[Effect]:
        logger.info(
            "session %s: rejected %s from %s: %s (%s)",
            self.task,
            env.kind,
            short_id(env.sender),
            reason,
            detail,
        )
        return [Rejected(self.task, reason, env.sender, env.kind, detail)]

    def tick(self, now_ms: int) -> list[Effect]:
        """Let time pass: run the deadlines that are due."""
        self._require_started()
        return self._expire(now_ms)

    def receive(self, env: Envelope, now_ms: int) -> list[Effect]:
        """Feed one verified envelope of this session (or its advertise on the mesh)."""
        self._require_started()
        effects = self._expire(now_ms)
        if env.sender == self.me:
            return effects  # our own publish echoed back by the mesh
        if env.task != self.task:
            return effects + self._reject(env, "wrong_task", f"task {env.task!r}")
        if env.kind not in self._accepts[self.stage]:
            reason = unaccepted_reason(self.stage, env.kind)
            if env.kind == "advertise" and env.sender == self.leader:
                return effects  # the advertisement we started from, seen again (re-announced)
            return effects + self._reject(env, reason, f"{env.kind} in stage {self.stage}")
        handler: Callable[[Envelope, int], list[Effect]] = getattr(self, f"_on_{env.kind}")
        return effects + handler(env, now_ms)
