"""The leader's machine (:class:`LeaderSession`): joins, assignment, blind items, tally, result.

See :mod:`protocol.session` for the theory of operation and the API.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import replace

from protocol.blind import DEFAULT_CANARY_RATE, deal_labels, item_text, make_canary, reveal_parts
from protocol.effects import (
    AbortCause,
    Aborted,
    Effect,
    Finished,
    Publish,
    Role,
    Stage,
    StageChanged,
    Subscribe,
    Unsubscribe,
)
from protocol.envelope import Envelope, judge_topic, leader_topic, statement_digest
from protocol.errors import StateError
from protocol.machine import LEADER_ACCEPTS, LEADER_TRANSITIONS, Session, clip
from protocol.messages import (
    MAX_PARTICIPANTS,
    MAX_REASON_CHARS,
    MESH_TOPIC,
    Abort,
    Advertise,
    Assign,
    Item,
    Join,
    Response,
    Score,
    Scores,
)
from protocol.newcomers import NewcomerRule
from protocol.result import Commitments
from protocol.tally import SPLITS, Tally, split_roles, tally

__all__ = ["DEFAULT_REANNOUNCE", "LeaderSession"]

logger = logging.getLogger(__name__)

DEFAULT_REANNOUNCE = 2  # extra advertisements while short of joiners, spread over the join window


class LeaderSession(Session):
    """The advertiser's machine: collects joins, assigns, forwards answers blind, tallies."""

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
        cap: int = MAX_PARTICIPANTS,
        weights: Mapping[bytes, float] | None = None,
        aggregator_params: Mapping[str, float] | None = None,
        selection_weights: Mapping[bytes, float] | None = None,
        canary_rate: float = DEFAULT_CANARY_RATE,
        canary_texts: Sequence[str] = (),
        reannounce: int = DEFAULT_REANNOUNCE,
        newcomers: NewcomerRule | None = None,
    ) -> None:
        super().__init__(task, me, me, advertise)
        if executors < 0:
            raise ValueError("executors must be >= 0 (0: as the split says)")
        if auto_assign_at is not None and not 2 <= auto_assign_at <= MAX_PARTICIPANTS:
            raise ValueError(f"auto_assign_at must be in [2, {MAX_PARTICIPANTS}]")
        if not 2 <= cap <= MAX_PARTICIPANTS:
            raise ValueError(f"cap must be in [2, {MAX_PARTICIPANTS}]")
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        if not 0.0 <= canary_rate <= 1.0 or reannounce < 0:
            raise ValueError("canary_rate must be in [0, 1] and reannounce >= 0")
        self.role = Role.LEADER
        self.rng = rng
        self.auto_assign_at = auto_assign_at
        self.auto_finalize = auto_finalize
        self.split = split
        self.executors_wanted = executors
        self.cap = cap
        self.weights = dict(weights) if weights is not None else None
        self.aggregator_params = dict(aggregator_params) if aggregator_params else None
        self.selection_weights = selection_weights
        self.canary_rate = canary_rate
        self.newcomers = newcomers  # fresh identities' verifier seats capped (protocol.newcomers)
        self.canary_texts = tuple(canary_texts)
        self.reannounce_left = reannounce if auto_assign_at else 0
        self.reannounce_at: list[int] = []
        self.reannounced = 0
        self.joined_count = 0
        # blind judging: executor -> label; canary label -> the executor it is made from
        self.labels: dict[bytes, str] = {}
        self.canary_of: dict[str, bytes] = {}
        self.items: dict[str, Item] = {}  # sent, by label
        self.items_total = 0
        self.responses: dict[bytes, Envelope] = {}
        self.label_scores: dict[str, dict[bytes, float]] = {}
        self.failed: dict[str, set[bytes]] = {}  # label -> verifiers that could not judge it
        self.batches: list[Envelope] = []  # counted score envelopes, in arrival order
        self.advert_digest = statement_digest("advertise", task, me, advertise)
        self.assign_digest = b""

    def start(self, now_ms: int) -> list[Effect]:
        if self.started:
            raise StateError("session already started")
        self.started = True
        self.join_deadline = now_ms + self.advertise.join_ms
        n, join_ms = self.reannounce_left, self.advertise.join_ms
        self.reannounce_at = [now_ms + join_ms * k // (n + 1) for k in range(1, n + 1)]
        return [
            Subscribe(self.task),  # before advertising, so no join is missed
            Subscribe(leader_topic(self.task)),  # where joins, responses and scores come
            Publish(MESH_TOPIC, self.task, self.advertise),
            StageChanged(self.task, self.stage, self.next_deadline()),
        ]

    # -- operator actions -----------------------------------------------------------------------
    # Operator actions check the state as it is and do not run overdue deadlines first: a
    # refused action must not swallow effects, and acting a moment after a deadline is exactly
    # what that deadline would have done (the leader's clock is the authority).
    def ack(self, now_ms: int) -> list[Effect]:
        """Assign roles now (the original's ``ack``): every joiner up to ``cap``."""
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
    def _short(self) -> bool:
        return bool(self.auto_assign_at) and len(self.joined) < (self.auto_assign_at or 0)

    def _stage_deadline(self) -> int | None:
        if self.stage == Stage.ADVERTISE:
            assert self.join_deadline is not None
            if self.reannounce_at and self._short():
                return min(self.reannounce_at[0], self.join_deadline)
            return self.join_deadline
        if self.stage == Stage.EXECUTE:
            return self.exec_deadline
        if self.stage in (Stage.VERIFY, Stage.FINALIZE):
            return self.verify_deadline
        return None

    def _on_deadline(self, now_ms: int) -> list[Effect]:
        if self.stage == Stage.ADVERTISE:
            assert self.join_deadline is not None
            if now_ms < self.join_deadline:
                self.reannounce_at.pop(0)
                self.reannounced += 1
                # the same statement again: providers that were full may have a slot now
                return [Publish(MESH_TOPIC, self.task, self.advertise)]
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
        body = env.body
        assert isinstance(body, Response)
        dropped = self._invalid_answer(env)  # not the format/tools asked: settled, not forwarded
        if dropped is not None:
            return dropped + (self._close_execute() if self._responses_complete() else [])
        self.responses[env.sender] = env
        text = item_text(body)  # forwarded at once, blind: label, text, signed response's digest
        items = [Item(self.labels[env.sender], text, env.digest, self.items_total)]
        for label, source in self.canary_of.items():
            if source == env.sender:
                fake = make_canary(text, self.rng, self.canary_texts)
                # a made-up digest: a real one would pair the twin with its source
                items.append(Item(label, fake, self.rng.randbytes(32), self.items_total))
        self.rng.shuffle(items)
        effects: list[Effect] = []
        for item in items:
            self.items[item.label] = item
            effects.append(Publish(judge_topic(self.task), self.task, item))
        if self._responses_complete():
            effects += self._close_execute()
        return effects

    def _on_score(self, env: Envelope, now_ms: int) -> list[Effect]:
        body = env.body
        if isinstance(body, Score):
            entries, failed = [(body.label, body.score)], ()
        else:
            assert isinstance(body, Scores)
            entries, failed = [(e.label, e.score) for e in body.entries], body.failed
        effects: list[Effect] = []
        counted = False
        for label, value in [*entries, *((f, None) for f in failed)]:
            verdict = self._score_verdict(env.sender, label, now_ms)
            if verdict is not None:
                what = "score" if value is not None else "failure report"
                effects += self._reject(env, verdict, f"{what} for {label}")
                continue
            counted = True
            if value is None:
                self.failed.setdefault(label, set()).add(env.sender)
            else:
                self.label_scores.setdefault(label, {})[env.sender] = value
        if counted:
            self.batches.append(env)
        if self.stage == Stage.VERIFY and self._scores_complete():
            effects += self._close_verify()
        return effects

    _on_scores = _on_score

    # -- role rules -----------------------------------------------------------------------------
    def _response_verdict(self, sender: bytes, now_ms: int) -> str | None:
        if sender not in self.executors:
            return "not_executor"
        if sender in self.responses or sender in self.invalid:
            return "duplicate"
        if self._exec_over() or (self.exec_deadline is not None and now_ms >= self.exec_deadline):
            return "late"
        return None

    def _score_verdict(self, verifier: bytes, label: str, now_ms: int) -> str | None:
        if verifier not in self.verifiers:
            return "not_verifier"
        if label not in self.items:
            return "unknown_label"
        if verifier in self.label_scores.get(label, {}) or verifier in self.failed.get(label, ()):
            return "duplicate"
        if self.verify_deadline is not None and now_ms >= self.verify_deadline:
            return "late"
        return None

    def _responses_complete(self) -> bool:
        settled = self.responses.keys() | self.invalid.keys()
        return bool(self.executors) and all(ex in settled for ex in self.executors)

    def _scores_complete(self) -> bool:
        """Every item sent has a score, or a failure report, from every verifier."""
        return all(
            ver in self.label_scores.get(label, {}) or ver in self.failed.get(label, ())
            for label in self.items
            for ver in self.verifiers
        )

    # -- transitions with their side effects ----------------------------------------------------
    def _assign(self, now_ms: int) -> list[Effect]:
        pool = sorted(self.joined)  # sorted: arrival order must not decide who is picked
        take = min(self.auto_assign_at or self.cap, self.cap)
        picked = self.rng.sample(pool, take) if len(pool) > take else pool
        executors, verifiers = split_roles(
            picked,
            self.rng,
            self.split,
            self.executors_wanted,
            weights=self.selection_weights,
        )
        if self.newcomers is not None:
            executors, verifiers = self.newcomers.apply(executors, verifiers, self.rng, now_ms)
        self.executors, self.verifiers = executors, verifiers
        self.requested = self.auto_assign_at or len(picked)
        self.joined_count = len(self.joined)
        self.labels, self.canary_of = deal_labels(executors, self.rng, self.canary_rate)
        self.items_total = len(self.labels) + len(self.canary_of)
        self.exec_deadline = now_ms + self.advertise.exec_ms
        self.verify_deadline = self.exec_deadline + self.advertise.verify_ms
        body = Assign(executors, verifiers, self.prompt)
        self.assign_digest = statement_digest("assign", self.task, self.me, body)
        return [Publish(self.task, self.task, body), self._go("assign")]

    def _close_execute(self) -> list[Effect]:
        if not self.responses and self.invalid:
            dropped = f"{len(self.invalid)} dropped ({next(iter(self.invalid.values()))})"
            return self._abort(f"no valid answer: {dropped}", AbortCause.INVALID_ANSWERS)
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

    def _matrix(self) -> dict[bytes, dict[bytes, float]]:
        return {
            ex: dict(self.label_scores.get(label, {}))
            for ex, label in self.labels.items()
            if ex in self.responses
        }

    def _tally(self) -> Tally:
        return tally(
            self.executors,
            self.verifiers,
            self._matrix(),
            responded=self.responses.keys(),
            aggregator=self.advertise.aggregator,
            weights=self.weights,
            params=self.aggregator_params,
        )

    def _text(self, executor: bytes) -> str | None:
        env = self.responses.get(executor)
        return env.body.text if env is not None else None  # type: ignore[union-attr]

    def _live_view(self):  # type: ignore[no-untyped-def]
        t = self._tally()
        texts = {ex: self._text(ex) for ex in self.executors}
        missing = tuple(ex for ex in self.executors if texts[ex] is None and self._exec_over())
        return texts, t.scores, t.averages, t.counts, missing

    def _finalize(self) -> list[Effect]:
        if not self.responses:
            return self._abort("no executor responded", AbortCause.NO_RESPONSE)
        t = self._tally()
        winner_text = (self._text(t.winner) or "") if t.winner is not None else ""
        canaries = {
            label: {ver: self.label_scores.get(label, {}).get(ver) for ver in self.verifiers}
            for label in self.canary_of
            if label in self.items
        }
        commits = Commitments(
            advert=self.advert_digest,
            assign=self.assign_digest,
            responses={ex: env.digest for ex, env in self.responses.items()},
            items={
                label: statement_digest("item", self.task, self.me, item)
                for label, item in self.items.items()
            },
            batches=tuple(env.digest for env in self.batches),
            items_total=self.items_total,
        )
        self.result = replace(
            t.to_result(winner_text),  # the tally, its params and weights
            requested=self.requested,
            joined=self.joined_count,
            labels=dict(self.labels),
            canaries=canaries,
            commits=commits,
        )
        raw = [env.raw for env in self.responses.values()] + [env.raw for env in self.batches]
        parts = reveal_parts(raw, [self.items[label] for label in canaries])
        effects: list[Effect] = [Publish(self.task, self.task, part) for part in parts]
        effects.append(Publish(self.task, self.task, self.result))
        return [
            *effects,
            self._go("finalize"),
            Finished(self.task, self.result),
            Unsubscribe(self.task),
            Unsubscribe(leader_topic(self.task)),
        ]

    def _abort(self, reason: str, cause: AbortCause) -> list[Effect]:
        reason = clip(reason.strip() or "aborted by the leader", MAX_REASON_CHARS)
        self.abort_reason = reason
        logger.info("session %s: aborted: %s", self.task, reason)
        return [
            Publish(self.task, self.task, Abort(reason)),
            self._go("abort"),
            Aborted(self.task, reason, cause),
            Unsubscribe(self.task),
            Unsubscribe(leader_topic(self.task)),
        ]
