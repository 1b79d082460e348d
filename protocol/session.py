"""Session state machines (sans-IO): :class:`LeaderSession` and :class:`ParticipantSession`.

API (stable; ``node/sessions.py`` drives it)
============================================

Both machines are plain objects. Every input is a method call that returns a ``list`` of
*effects* (frozen dataclasses below) for the runtime to carry out, in order. Nothing here
touches a socket, a clock or a global RNG: ``now_ms`` (any monotonic-ish millisecond clock of
this node) and a ``random.Random`` are passed in.

Leader (the node that advertised)::

    s = LeaderSession(task, me, Advertise(...), rng=random.Random(seed),
                      auto_assign_at=None | N,    # pipe N: assign once N joined
                      auto_finalize=True,         # finalize as soon as every score arrived
                      split="balanced" | "original",
                      executors=0)                # K > 0: K executors (>= 1 verifier left)
    s.start(now_ms)              -> [Subscribe(task), Subscribe(leader_topic(task)),
                                     Publish(MESH_TOPIC, advertise), StageChanged]
    s.receive(envelope, now_ms)  -> effects   # envelope already passed open_envelope + ReplayGuard
    s.tick(now_ms)               -> effects   # call at (or after) s.next_deadline()
    s.ack(now_ms)                -> effects   # operator: assign roles now (needs >= 2 joined)
    s.finalize(now_ms)           -> effects   # operator: tally what arrived, publish the result
    s.abort(now_ms, reason)      -> effects   # operator: publish abort
    s.next_deadline() -> int | None           # when to call tick(); None once finished
    s.snapshot() -> SessionSnapshot           # plain frozen view for ``session`` events
    s.finished -> bool;  s.result -> Result | None;  s.stage -> Stage

Participant (a provider that saw an ``advertise``; ``join=False`` only watches)::

    p = ParticipantSession(task, me, leader, Advertise(...), model="qwen2.5:1.5b", backend="ollama",
                           grace_ms=5_000, batch_scores=False, join=True)
    p = ParticipantSession.from_advertise(envelope, me, model=..., backend=...)
    p.start(now_ms)              -> [Subscribe(task), Publish(leader_topic(task), Join), StageChanged]
    p.receive(envelope, now_ms)  -> effects   # may emit Generate (executor) / Judge (verifier)
    p.tick(now_ms)               -> effects
    p.generation_done(text, model, gen_ms, now_ms)        -> [Publish(task, Response)]
    p.generation_failed(error, now_ms)                    -> [Notice]   (this executor is missing)
    p.judgement_done(executor, score, reason, judge_model, now_ms)
                                 -> [Publish(leader_topic(task), Score)]
    p.judgement_failed(executor, error, now_ms)
                                 -> [Notice, Publish(leader_topic(task), Scores(failed=...))]
    p.next_deadline(), p.snapshot(), p.finished, p.result, p.stage, p.role

``batch_scores=True``: a verifier sends one ``scores`` message once it has judged everything it
will get (every executor answered, or its execute deadline passed, and no judgement is still
running) instead of one ``score`` per response: fewer messages through the hub (ARCHITECTURE
§10 item 13) at the price of the slowest judgement. Leaders accept both forms, entry by entry.

A judgement that fails (an error, a timeout, no usable number) is reported to the leader as
``Scores.failed`` (in the batch, or alone): that cell stays *missing*, never 0.00, and the
leader finalizes once every cell is scored or reported instead of waiting for the deadline.

``SessionSnapshot.to_dict()`` gives the snapshot with base58 peer IDs (JSON-able). Deadlines in
snapshots and effects are in the clock you pass as ``now_ms`` (use a monotonic ms clock).

Operator actions in a state that does not allow them raise :class:`~protocol.errors.StateError`
(with a message fit for the user); everything a *peer* does wrong becomes a ``Rejected`` effect.
Inputs after the session finished are answered with ``Rejected(reason="late")`` or nothing.
Every input may change the snapshot: emit a ``session`` event when it differs from the last one.

Effects (defined in :mod:`protocol.effects`, re-exported here): ``Publish(topic, task, body)`` (seal with your signer, then publish), ``Subscribe``,
``Unsubscribe``, ``Generate(task, prompt, deadline_ms, params)``, ``Judge(task, prompt, executor, text,
deadline_ms)``, ``StageChanged(task, stage, deadline_ms)``, ``Finished(task, result)``,
``Aborted(task, reason, cause)``, ``Rejected(task, reason, sender, kind, detail)``, ``Notice(task, text)``.
Generate/Judge deadlines are in the caller's ``now_ms`` clock; run judgements concurrently.

Theory of operation
===================

A session moves ADVERTISE -> EXECUTE -> VERIFY -> FINALIZE -> DONE, or to ABORTED from any live
stage. The tables ``LEADER_TRANSITIONS`` / ``PARTICIPANT_TRANSITIONS`` list, per stage, which
trigger leads where; a trigger absent from a stage's row cannot happen there (``_go`` asserts).
``LEADER_ACCEPTS`` / ``PARTICIPANT_ACCEPTS`` list which message kinds each stage takes at all;
the per-kind handlers then apply the role rules, shared by both machines (``_score_verdict``,
``_response_verdict``):

* only the advertiser assigns, finalizes or aborts (``not_leader``);
* only assigned executors respond, once, before the execute deadline
  (``not_executor`` / ``duplicate`` / ``late``);
* only assigned verifiers score, once per executor, never themselves, before the verify deadline
  (``not_verifier`` / ``self_score`` / ``unknown_executor`` / ``duplicate`` / ``late``);
* a verifier that sent nothing is *missing*; the tally leaves it out (never 0.00).

Deadlines are durations in the advertisement. The leader measures them on its own clock, from
its advertisement (join) and its assignment (execute, then verify = execute + verify_ms); they
decide what is accepted. Participants measure the same durations from when *they* saw the
advertisement/assignment (so they run a little behind the leader) and use them only to stop
working and, ``grace_ms`` later, to give up waiting for the leader. Every stage has a deadline,
so ``next_deadline()`` is never ``None`` while a session is live: nothing waits forever.

Leader, stage by stage: ADVERTISE collects joins; ``ack``, ``auto_assign_at`` joins, or the join
deadline (with >= 2 joined; fewer -> abort) splits roles (:func:`protocol.tally.split_roles`)
and publishes ``assign``. EXECUTE collects responses (and early scores, which may overtake a
response on the mesh). When every executor responded, or at the execute deadline, VERIFY
(no response at all -> abort). When every responded executor has a score from every verifier,
FINALIZE: with ``auto_finalize`` the result goes out at once, else at ``finalize`` or at the
verify deadline, whichever comes first. The verify deadline always finalizes.

Participant: joins, waits for ``assign`` (messages that overtake it are buffered), then an
executor generates once and a verifier judges every response the moment it arrives (one
``Judge`` effect per response; concurrency is the runtime's job). It mirrors the leader's stages
for display and finishes on the leader's ``result`` or ``abort``.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from protocol.effects import (
    TERMINAL,
    AbortCause,
    Aborted,
    Effect,
    Finished,
    Generate,
    Judge,
    Notice,
    Publish,
    Rejected,
    Role,
    SessionSnapshot,
    Stage,
    StageChanged,
    Subscribe,
    Unsubscribe,
)
from protocol.envelope import Envelope, leader_topic, validate_task
from protocol.errors import ProtocolError, StateError
from protocol.identity import is_peer_id, short_id
from protocol.messages import (
    MAX_NAME_CHARS,
    MAX_PARTICIPANTS,
    MAX_REASON_CHARS,
    MAX_RESPONSE_CHARS,
    MAX_SCORE,
    MESH_TOPIC,
    MIN_SCORE,
    Abort,
    Advertise,
    Assign,
    Join,
    Response,
    Result,
    Score,
    ScoreEntry,
    Scores,
)
from protocol.newcomers import NewcomerRule
from protocol.structured import answer_problem, judged_answer, judged_prompt
from protocol.tally import SPLITS, Tally, split_roles, tally

__all__ = [
    "DEFAULT_GRACE_MS",
    "LEADER_ACCEPTS",
    "LEADER_TRANSITIONS",
    "PARTICIPANT_ACCEPTS",
    "PARTICIPANT_TRANSITIONS",
    "AbortCause",
    "Aborted",
    "Effect",
    "Finished",
    "Generate",
    "Judge",
    "LeaderSession",
    "Notice",
    "ParticipantSession",
    "Publish",
    "Rejected",
    "Role",
    "SessionSnapshot",
    "Stage",
    "StageChanged",
    "Subscribe",
    "Unsubscribe",
]

logger = logging.getLogger(__name__)

DEFAULT_GRACE_MS = 5_000
# Messages that overtake the assignment are held this long (count), then refused.
_MAX_EARLY = 4 * MAX_PARTICIPANTS


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
        "result": Stage.DONE,
        "abort": Stage.ABORTED,
        "give_up": Stage.ABORTED,
    },
    Stage.EXECUTE: {
        "responses_complete": Stage.VERIFY,
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
_FROM_LEADER = frozenset({"advertise", "assign", "result", "abort"})
PARTICIPANT_ACCEPTS: dict[Stage, frozenset[str]] = {
    Stage.ADVERTISE: frozenset({"join", "assign", "result", "abort"}) | _WORK,  # work is buffered
    Stage.EXECUTE: frozenset({"join", "result", "abort"}) | _WORK,
    Stage.VERIFY: frozenset({"join", "result", "abort"}) | _WORK,
    Stage.FINALIZE: frozenset({"join", "result", "abort"}) | _WORK,
    Stage.DONE: frozenset(),
    Stage.ABORTED: frozenset(),
}


def _unaccepted_reason(stage: Stage, kind: str) -> str:
    if kind in ("presence", "bootmesh"):
        return "wrong_topic"
    if stage in TERMINAL or kind == "join":
        return "late"
    if kind in _FROM_LEADER:
        return "not_leader"
    return "too_early"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Session:
    """State and rules shared by both machines."""

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
        self.executors: tuple[bytes, ...] = ()
        self.verifiers: tuple[bytes, ...] = ()
        self.responses: dict[bytes, Response] = {}
        # executor -> why its response was dropped (wrong format, bad tool call): settled, missing
        self.invalid: dict[bytes, str] = {}
        self.scores: dict[bytes, dict[bytes, float]] = {}
        # executor -> verifiers that reported they could not judge it (cells missing, settled)
        self.failed: dict[bytes, set[bytes]] = {}
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
        live = self._tally()
        if self.result is not None:
            averages, counts = dict(self.result.averages), dict(self.result.counts)
            matrix = {e: dict(r) for e, r in self.result.scores.items()}
            missing, winner, winner_score = (
                self.result.missing,
                self.result.winner,
                self.result.score,
            )
        else:
            averages, counts, matrix = live.averages, live.counts, live.scores
            # a not-yet-arrived score is missing only once its deadline passed
            missing = tuple(
                ex for ex in self.executors if ex not in self.responses and self._exec_over()
            )
            winner = winner_score = None
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
            models={p: j.model for p, j in self.joined.items()},
            executors=self.executors,
            verifiers=self.verifiers,
            responses={
                ex: (self.responses[ex].text if ex in self.responses else None)
                for ex in self.executors
            },
            scores=matrix,
            averages=averages,
            counts=counts,
            missing=tuple(missing),
            winner=winner,
            winner_score=winner_score,
            reason=self.abort_reason,
        )

    # -- shared machinery -----------------------------------------------------------------------
    def _stage_deadline(self) -> int | None:
        raise NotImplementedError

    def _on_deadline(self, now_ms: int) -> list[Effect]:
        raise NotImplementedError

    def _tally(self) -> Tally:
        return tally(
            self.executors,
            self.verifiers,
            self.scores,
            responded=self.responses.keys(),
            aggregator=self.advertise.aggregator,
        )

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
        """Run every deadline that passed; each handler leaves its stage, so this terminates."""
        effects: list[Effect] = []
        while not self.finished:
            deadline = self._stage_deadline()
            if deadline is None or now_ms < deadline:
                break
            before = self.stage
            effects += self._on_deadline(now_ms)
            assert self.stage != before, f"deadline handler stayed in {before}"
        return effects

    def _exec_over(self) -> bool:
        return self.stage not in (Stage.ADVERTISE, Stage.EXECUTE)

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
            reason = _unaccepted_reason(self.stage, env.kind)
            if env.kind == "advertise" and env.sender == self.leader:
                return effects  # the advertisement we started from, seen again
            return effects + self._reject(env, reason, f"{env.kind} in stage {self.stage}")
        handler: Callable[[Envelope, int], list[Effect]] = getattr(self, f"_on_{env.kind}")
        return effects + handler(env, now_ms)

    # -- role rules (both machines) -------------------------------------------------------------
    def _response_verdict(self, sender: bytes, now_ms: int) -> str | None:
        if sender not in self.executors:
            return "not_executor"
        if sender in self.responses or sender in self.invalid:
            return "duplicate"
        if self._exec_over() or (self.exec_deadline is not None and now_ms >= self.exec_deadline):
            return "late"
        return None

    def _score_verdict(self, verifier: bytes, executor: bytes, now_ms: int) -> str | None:
        if verifier == executor:
            return "self_score"
        if verifier not in self.verifiers:
            return "not_verifier"
        if executor not in self.executors:
            return "unknown_executor"
        if verifier in self.scores.get(executor, {}) or verifier in self.failed.get(executor, ()):
            return "duplicate"
        if self.verify_deadline is not None and now_ms >= self.verify_deadline:
            return "late"
        return None

    def _record_scores(
        self, env: Envelope, entries: list[tuple[bytes, float]], now_ms: int
    ) -> list[Effect]:
        effects: list[Effect] = []
        for executor, value in entries:
            verdict = self._score_verdict(env.sender, executor, now_ms)
            if verdict is not None:
                effects += self._reject(env, verdict, f"score for {short_id(executor)}")
                continue
            self.scores.setdefault(executor, {})[env.sender] = value
        return effects

    def _record_failures(self, env: Envelope, now_ms: int) -> list[Effect]:
        """A ``scores`` batch's ``failed`` list: cells that will stay missing, settled now."""
        body = env.body
        if not isinstance(body, Scores):
            return []
        effects: list[Effect] = []
        for executor in body.failed:
            verdict = self._score_verdict(env.sender, executor, now_ms)
            if verdict is not None:
                effects += self._reject(env, verdict, f"failure report for {short_id(executor)}")
                continue
            self.failed.setdefault(executor, set()).add(env.sender)
        return effects

    def _score_entries(self, env: Envelope) -> list[tuple[bytes, float]]:
        body = env.body
        if isinstance(body, Score):
            return [(body.executor, body.score)]
        assert isinstance(body, Scores)
        return [(e.executor, e.score) for e in body.entries]

    def _responses_complete(self) -> bool:
        settled = self.responses.keys() | self.invalid.keys()
        return bool(self.executors) and all(ex in settled for ex in self.executors)

    def _invalid_answer(self, env: Envelope) -> list[Effect] | None:
        """Drop a response that does not fit the advertisement's format/tools (issue 17)."""
        assert isinstance(env.body, Response)
        problem = answer_problem(self.advertise, env.body)
        if problem is None:
            return None
        self.invalid[env.sender] = problem
        return self._reject(env, "invalid_answer", _clip(problem, MAX_REASON_CHARS))

    def _scores_complete(self) -> bool:
        """Every responded executor has a score, or a failure report, from every verifier."""
        return all(
            all(
                ver in self.scores.get(ex, {}) or ver in self.failed.get(ex, ())
                for ver in self.verifiers
            )
            for ex in self.responses
        )


class LeaderSession(_Session):
    """The advertiser's machine: collects joins, assigns, collects work, tallies, publishes."""

    _transitions = LEADER_TRANSITIONS
    _accepts = LEADER_ACCEPTS

    def __init__(
        self,
        task: str,
        me: bytes,
        advertise: Advertise,
        *,
        rng: random.Random,
        auto_assign_at: int | None = None,
        auto_finalize: bool = True,
        split: str = "balanced",
        executors: int = 0,
        newcomers: NewcomerRule | None = None,
    ) -> None:
        super().__init__(task, me, me, advertise)
        if executors < 0:
            raise ValueError("executors must be >= 0 (0: as the split says)")
        if auto_assign_at is not None and not 2 <= auto_assign_at <= MAX_PARTICIPANTS:
            raise ValueError(f"auto_assign_at must be in [2, {MAX_PARTICIPANTS}]")
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        self.role = Role.LEADER
        self.rng = rng
        self.auto_assign_at = auto_assign_at
        self.auto_finalize = auto_finalize
        self.split = split
        self.executors_wanted = executors
        self.newcomers = newcomers  # fresh identities' verifier seats capped (protocol.newcomers)

    def start(self, now_ms: int) -> list[Effect]:
        if self.started:
            raise StateError("session already started")
        self.started = True
        self.join_deadline = now_ms + self.advertise.join_ms
        return [
            Subscribe(self.task),  # before advertising, so no join is missed
            Subscribe(leader_topic(self.task)),  # where joins and scores come
            Publish(MESH_TOPIC, self.task, self.advertise),
            StageChanged(self.task, self.stage, self.next_deadline()),
        ]

    # -- operator actions -----------------------------------------------------------------------
    # Operator actions check the state as it is and do not run overdue deadlines first: a
    # refused action must not swallow effects, and acting a moment after a deadline is exactly
    # what that deadline would have done (the leader's clock is the authority).
    def ack(self, now_ms: int) -> list[Effect]:
        """Assign roles now (the original's ``ack``)."""
        self._require_started()
        if self.stage != Stage.ADVERTISE:
            raise StateError(f"roles already assigned (stage {self.stage})")
        if len(self.joined) < 2:
            raise StateError(
                f"need at least 2 joined peers to assign roles, have {len(self.joined)}"
            )
        return self._assign(now_ms)

    def finalize(self, now_ms: int) -> list[Effect]:
        """Tally what arrived and publish the result now (the original's ``finalize``)."""
        self._require_started()
        if self.finished:
            raise StateError(f"session already {self.stage}")
        if self.stage == Stage.ADVERTISE:
            raise StateError("roles not assigned yet: ack first")
        return self._finalize()

    def abort(self, now_ms: int, reason: str = "aborted by the leader") -> list[Effect]:
        self._require_started()
        if self.finished:
            raise StateError(f"session already {self.stage}")
        return self._abort(reason, AbortCause.OPERATOR)

    # -- deadlines ------------------------------------------------------------------------------
    def _stage_deadline(self) -> int | None:
        if self.stage == Stage.ADVERTISE:
            return self.join_deadline
        if self.stage == Stage.EXECUTE:
            return self.exec_deadline
        if self.stage in (Stage.VERIFY, Stage.FINALIZE):
            return self.verify_deadline
        return None

    def _on_deadline(self, now_ms: int) -> list[Effect]:
        if self.stage == Stage.ADVERTISE:
            if len(self.joined) >= 2:
                return self._assign(now_ms)
            return self._abort(
                f"not enough participants: {len(self.joined)} joined, need 2",
                AbortCause.NOT_ENOUGH_PARTICIPANTS,
            )
        if self.stage == Stage.EXECUTE:
            return self._close_execute()
        return self._finalize()  # VERIFY or FINALIZE at the verify deadline

    # -- message handlers -----------------------------------------------------------------------
    def _on_join(self, env: Envelope, now_ms: int) -> list[Effect]:
        if env.sender in self.joined:
            return self._reject(env, "duplicate", "already joined")
        if len(self.joined) >= MAX_PARTICIPANTS:
            return self._reject(env, "full", f"{MAX_PARTICIPANTS} participants already")
        assert isinstance(env.body, Join)
        self.joined[env.sender] = env.body
        if self.auto_assign_at is not None and len(self.joined) >= self.auto_assign_at:
            return self._assign(now_ms)
        return []

    def _on_response(self, env: Envelope, now_ms: int) -> list[Effect]:
        verdict = self._response_verdict(env.sender, now_ms)
        if verdict is not None:
            return self._reject(env, verdict, "response")
        dropped = self._invalid_answer(env)
        if dropped is None:
            assert isinstance(env.body, Response)
            self.responses[env.sender] = env.body
        if self._responses_complete():
            return (dropped or []) + self._close_execute()
        return dropped or []

    def _on_score(self, env: Envelope, now_ms: int) -> list[Effect]:
        effects = self._record_scores(env, self._score_entries(env), now_ms)
        effects += self._record_failures(env, now_ms)
        if self.stage == Stage.VERIFY and self._scores_complete():
            effects += self._close_verify()
        return effects

    _on_scores = _on_score

    # -- transitions with their side effects ----------------------------------------------------
    def _assign(self, now_ms: int) -> list[Effect]:
        executors, verifiers = split_roles(
            list(self.joined), self.rng, self.split, self.executors_wanted
        )
        if self.newcomers is not None:
            executors, verifiers = self.newcomers.apply(executors, verifiers, self.rng, now_ms)
        self.executors, self.verifiers = executors, verifiers
        self.exec_deadline = now_ms + self.advertise.exec_ms
        self.verify_deadline = self.exec_deadline + self.advertise.verify_ms
        body = Assign(executors, verifiers, self.prompt)
        return [Publish(self.task, self.task, body), self._go("assign")]

    def _close_execute(self) -> list[Effect]:
        if not self.responses and self.invalid:
            problem = next(iter(self.invalid.values()))
            return self._abort(
                f"no valid answer: {len(self.invalid)} dropped ({problem})",
                AbortCause.INVALID_ANSWERS,
            )
        if not self.responses:
            return self._abort(
                "no executor responded before the execute deadline", AbortCause.NO_RESPONSE
            )
        effects: list[Effect] = [self._go("responses_complete")]
        if self._scores_complete():
            effects += self._close_verify()
        return effects

    def _close_verify(self) -> list[Effect]:
        effects: list[Effect] = [self._go("scores_complete")]
        if self.auto_finalize:
            effects += self._finalize()
        return effects

    def _finalize(self) -> list[Effect]:
        if not self.responses:
            return self._abort("no executor responded", AbortCause.NO_RESPONSE)
        t = self._tally()
        text = self.responses[t.winner].text if t.winner is not None else ""
        self.result = t.to_result(text)
        return [
            Publish(self.task, self.task, self.result),
            self._go("finalize"),
            Finished(self.task, self.result),
            Unsubscribe(self.task),
            Unsubscribe(leader_topic(self.task)),
        ]

    def _abort(self, reason: str, cause: AbortCause) -> list[Effect]:
        reason = _clip(reason.strip() or "aborted by the leader", MAX_REASON_CHARS)
        self.abort_reason = reason
        return [
            Publish(self.task, self.task, Abort(reason)),
            self._go("abort"),
            Aborted(self.task, reason, cause),
            Unsubscribe(self.task),
            Unsubscribe(leader_topic(self.task)),
        ]


class ParticipantSession(_Session):
    """A provider's machine for one advertised session: join, then execute or verify."""

    _transitions = PARTICIPANT_TRANSITIONS
    _accepts = PARTICIPANT_ACCEPTS

    def __init__(
        self,
        task: str,
        me: bytes,
        leader: bytes,
        advertise: Advertise,
        *,
        model: str,
        backend: str,
        grace_ms: int = DEFAULT_GRACE_MS,
        batch_scores: bool = False,
        join: bool = True,
        capabilities: tuple[str, ...] = (),
    ) -> None:
        super().__init__(task, me, leader, advertise)
        self.capabilities = tuple(capabilities)
        if me == leader:
            raise ValueError("the leader runs a LeaderSession, not a ParticipantSession")
        if grace_ms < 0:
            raise ValueError("grace_ms must be >= 0")
        self.model = _clip(model or "unknown", MAX_NAME_CHARS)
        self.backend = _clip(backend or "unknown", MAX_NAME_CHARS)
        self.grace_ms = grace_ms
        self.batch_scores = batch_scores
        self.join = join
        self.give_up_at: int | None = None
        self.generating = False
        self.generated = False
        self.judging: set[bytes] = set()  # executors whose Judge effect is out
        self.judged: dict[bytes, ScoreEntry | None] = {}  # None: judgement failed
        self.unsent: list[ScoreEntry] = []  # batch mode: judged, not yet published
        self.unsent_failed: list[bytes] = []  # batch mode: could not judge, not yet reported
        self.judge_model = "unknown"
        self._early: list[Envelope] = []
        if not join:
            self.role = Role.OBSERVER

    @classmethod
    def from_advertise(cls, env: Envelope, me: bytes, **kwargs: object) -> ParticipantSession:
        """Build from a verified ``advertise`` envelope (task and leader taken from it)."""
        if not isinstance(env.body, Advertise):
            raise TypeError(f"expected an advertise envelope, got {env.kind}")
        return cls(env.task, me, env.sender, env.body, **kwargs)  # type: ignore[arg-type]

    def start(self, now_ms: int) -> list[Effect]:
        if self.started:
            raise StateError("session already started")
        self.started = True
        self.join_deadline = now_ms + self.advertise.join_ms
        effects: list[Effect] = [Subscribe(self.task)]
        if self.join:
            self.joined[self.me] = Join(self.model, self.backend, self.capabilities)
            effects.append(Publish(leader_topic(self.task), self.task, self.joined[self.me]))
        effects.append(StageChanged(self.task, self.stage, self.next_deadline()))
        return effects

    # -- local work -----------------------------------------------------------------------------
    def generation_done(
        self,
        text: str,
        model: str,
        gen_ms: int,
        now_ms: int,
        **details: Any,
    ) -> list[Effect]:
        """The local model answered: publish the response (unless too late or not asked).

        ``details``: the :class:`Response` generation fields (``tool_calls``, ``done_reason``,
        token counts, model times); a value the protocol refuses fails the generation.
        """
        self._require_started()
        effects = self._expire(now_ms)
        if self.role != Role.EXECUTOR or self.generated or self.finished:
            return effects
        self.generating = False
        self.generated = True
        if self.exec_deadline is not None and now_ms >= self.exec_deadline:
            effects.append(Notice(self.task, "generation finished after the execute deadline"))
            return effects
        if len(text) > MAX_RESPONSE_CHARS:
            effects.append(Notice(self.task, f"response cut to {MAX_RESPONSE_CHARS} characters"))
            text = text[:MAX_RESPONSE_CHARS]
        try:
            body = Response(
                text, _clip(model or self.model, MAX_NAME_CHARS), max(0, int(gen_ms)), **details
            )
        except ProtocolError as exc:
            self.generated = False
            return effects + self.generation_failed(f"unusable answer: {exc}", now_ms)
        self.responses[self.me] = body
        effects.append(Publish(self.task, self.task, body))
        if self.stage == Stage.EXECUTE and self._responses_complete():
            effects += self._close_execute()
        return effects

    def generation_failed(self, error: str, now_ms: int) -> list[Effect]:
        self._require_started()
        effects = self._expire(now_ms)
        if self.role != Role.EXECUTOR or self.generated:
            return effects
        self.generating = False
        self.generated = True
        effects.append(Notice(self.task, f"generation failed ({error}); executor will be missing"))
        return effects

    def judgement_done(
        self, executor: bytes, score: float, reason: str, judge_model: str, now_ms: int
    ) -> list[Effect]:
        """The local judge scored ``executor``'s response: publish (or batch) the score.

        ``score`` is clamped to [0.00, 0.99]; a non-number or NaN counts as a failed judgement.
        """
        self._require_started()
        effects = self._expire(now_ms)
        if self.role != Role.VERIFIER or executor not in self.judging or self.finished:
            return effects
        self.judging.discard(executor)
        if self.verify_deadline is not None and now_ms >= self.verify_deadline:
            self.judged[executor] = None
            late = f"judgement of {short_id(executor)} finished after the verify deadline"
            effects.append(Notice(self.task, late))
            return effects
        if isinstance(score, bool) or not isinstance(score, int | float) or math.isnan(score):
            return effects + self._could_not_judge(
                executor, f"judge gave no usable score ({score!r})"
            )
        # the judge clamps already; clamping again keeps a stray 1.0 from costing the score
        score = min(max(float(score), MIN_SCORE), MAX_SCORE)
        entry = ScoreEntry(executor, score, _clip(str(reason), MAX_REASON_CHARS))
        self.judged[executor] = entry
        self.judge_model = _clip(judge_model or "unknown", MAX_NAME_CHARS)
        self.scores.setdefault(executor, {})[self.me] = entry.score
        if self.batch_scores:
            self.unsent.append(entry)
            effects += self._flush_batch()
        else:
            body = Score(entry.executor, entry.score, entry.reason, self.judge_model)
            effects.append(Publish(leader_topic(self.task), self.task, body))
        return effects + self._check_scores_complete()

    def judgement_failed(self, executor: bytes, error: str, now_ms: int) -> list[Effect]:
        self._require_started()
        effects = self._expire(now_ms)
        if self.role != Role.VERIFIER or executor not in self.judging:
            return effects
        self.judging.discard(executor)
        if self.verify_deadline is not None and now_ms >= self.verify_deadline:
            self.judged[executor] = None
            return [*effects, Notice(self.task, f"judging {short_id(executor)} failed ({error})")]
        return effects + self._could_not_judge(
            executor, f"judging {short_id(executor)} failed ({error}); that score will be missing"
        )

    def _could_not_judge(self, executor: bytes, notice: str) -> list[Effect]:
        """Tell the leader (in the batch, or at once) that this cell will stay missing, so it
        need not wait for it until the verify deadline."""
        self.judged[executor] = None
        self.failed.setdefault(executor, set()).add(self.me)
        effects: list[Effect] = [Notice(self.task, notice)]
        if self.batch_scores:
            self.unsent_failed.append(executor)
            effects += self._flush_batch()
        else:
            body = Scores((), self.judge_model, failed=(executor,))
            effects.append(Publish(leader_topic(self.task), self.task, body))
        return effects + self._check_scores_complete()

    def _flush_batch(self) -> list[Effect]:
        """Batch mode: publish once nothing is being judged and nothing more is expected."""
        if not (self.unsent or self.unsent_failed) or self.judging:
            return []
        expecting_more = not self._exec_over() and not self._responses_complete()
        if expecting_more:
            return []
        body = Scores(tuple(self.unsent), self.judge_model, failed=tuple(self.unsent_failed))
        self.unsent, self.unsent_failed = [], []
        return [Publish(leader_topic(self.task), self.task, body)]

    # -- deadlines ------------------------------------------------------------------------------
    def _stage_deadline(self) -> int | None:
        if self.stage == Stage.ADVERTISE:
            assert self.join_deadline is not None
            return self.join_deadline + self.grace_ms
        if self.stage == Stage.EXECUTE:
            return self.exec_deadline
        if self.stage == Stage.VERIFY:
            return self.verify_deadline
        if self.stage == Stage.FINALIZE:
            return self.give_up_at
        return None

    def _on_deadline(self, now_ms: int) -> list[Effect]:
        if self.stage == Stage.ADVERTISE:
            return self._give_up("no assignment from the leader before the join deadline")
        if self.stage == Stage.EXECUTE:
            return self._close_execute()
        if self.stage == Stage.VERIFY:
            effects = [self._go("scores_complete")]
            return effects + self._flush_batch()
        return self._give_up("no result from the leader after the verify deadline")

    def _give_up(self, reason: str) -> list[Effect]:
        self.abort_reason = reason
        return [
            self._go("give_up"),
            Aborted(self.task, reason, AbortCause.GAVE_UP),
            Unsubscribe(self.task),
        ]

    def _close_execute(self) -> list[Effect]:
        effects: list[Effect] = [self._go("responses_complete")]
        effects += self._flush_batch()
        return effects + self._check_scores_complete()

    def _check_scores_complete(self) -> list[Effect]:
        if self.stage == Stage.VERIFY and self._scores_complete():
            return [self._go("scores_complete")]
        return []

    # -- message handlers -----------------------------------------------------------------------
    def _on_join(self, env: Envelope, now_ms: int) -> list[Effect]:
        fresh = self.stage == Stage.ADVERTISE and env.sender not in self.joined
        if fresh and len(self.joined) < MAX_PARTICIPANTS:
            assert isinstance(env.body, Join)
            self.joined[env.sender] = env.body
        return []  # joins after the assignment are the leader's business, not a violation

    def _from_leader(self, env: Envelope) -> list[Effect] | None:
        if env.sender != self.leader:
            return self._reject(env, "not_leader", f"{env.kind} from a peer that did not advertise")
        return None

    def _on_assign(self, env: Envelope, now_ms: int) -> list[Effect]:
        rejected = self._from_leader(env)
        if rejected is not None:
            return rejected
        body = env.body
        assert isinstance(body, Assign)
        self.executors, self.verifiers = body.executors, body.verifiers
        self.prompt = body.prompt
        self.exec_deadline = now_ms + self.advertise.exec_ms
        self.verify_deadline = self.exec_deadline + self.advertise.verify_ms
        self.give_up_at = self.verify_deadline + self.grace_ms
        if self.me in body.executors:
            self.role = Role.EXECUTOR
        elif self.me in body.verifiers:
            self.role = Role.VERIFIER
        else:
            self.role = Role.OBSERVER
        effects: list[Effect] = [self._go("assign")]
        if self.role == Role.EXECUTOR:
            self.generating = True
            adv = self.advertise
            generate = Generate(self.task, self.prompt, self.exec_deadline, adv.params)
            effects.append(
                replace(
                    generate,
                    options=adv.options,
                    format=adv.format,
                    tools=adv.tools,
                    tool_choice=adv.tool_choice,
                )
            )
        early, self._early = self._early, []
        for held in early:
            effects += self.receive(held, now_ms)
        return effects

    def _on_response(self, env: Envelope, now_ms: int) -> list[Effect]:
        if self.stage == Stage.ADVERTISE:
            return self._hold(env)
        verdict = self._response_verdict(env.sender, now_ms)
        if verdict is not None:
            return self._reject(env, verdict, "response")
        assert isinstance(env.body, Response)
        effects: list[Effect] = self._invalid_answer(env) or []
        if not effects:
            self.responses[env.sender] = env.body
        if self.role == Role.VERIFIER and not effects:
            self.judging.add(env.sender)
            assert self.verify_deadline is not None
            question = judged_prompt(self.advertise, self.prompt)
            answer = judged_answer(env.body)
            effects.append(Judge(self.task, question, env.sender, answer, self.verify_deadline))
        if self.stage == Stage.EXECUTE and self._responses_complete():
            effects += self._close_execute()
        return effects

    def _on_score(self, env: Envelope, now_ms: int) -> list[Effect]:
        if self.stage == Stage.ADVERTISE:
            return self._hold(env)
        effects = self._record_scores(env, self._score_entries(env), now_ms)
        effects += self._record_failures(env, now_ms)
        return effects + self._check_scores_complete()

    _on_scores = _on_score

    def _hold(self, env: Envelope) -> list[Effect]:
        if len(self._early) >= _MAX_EARLY:
            return self._reject(env, "too_early", "before the assignment")
        self._early.append(env)
        return []

    def _on_result(self, env: Envelope, now_ms: int) -> list[Effect]:
        rejected = self._from_leader(env)
        if rejected is not None:
            return rejected
        result = env.body
        assert isinstance(result, Result)
        if self.executors and (
            set(result.executors) != set(self.executors)
            or set(result.verifiers) != set(self.verifiers)
        ):
            return self._reject(env, "result_mismatch", "roles differ from the assignment")
        self.result = result
        return [self._go("result"), Finished(self.task, result), Unsubscribe(self.task)]

    def _on_abort(self, env: Envelope, now_ms: int) -> list[Effect]:
        rejected = self._from_leader(env)
        if rejected is not None:
            return rejected
        assert isinstance(env.body, Abort)
        self.abort_reason = env.body.reason
        return [
            self._go("abort"),
            Aborted(self.task, env.body.reason, AbortCause.LEADER),
            Unsubscribe(self.task),
        ]
