"""A provider's machine (:class:`ParticipantSession`): join, then execute or judge blind.

See :mod:`protocol.session` for the theory of operation and the API.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from protocol.effects import (
    AbortCause,
    Aborted,
    Effect,
    Finished,
    Generate,
    Judge,
    Notice,
    Publish,
    Released,
    Role,
    Stage,
    StageChanged,
    Subscribe,
    Unsubscribe,
)
from protocol.envelope import Envelope, judge_topic, leader_topic
from protocol.errors import ProtocolError, StateError
from protocol.machine import (
    DEFAULT_GRACE_MS,
    MAX_EARLY,
    PARTICIPANT_ACCEPTS,
    PARTICIPANT_TRANSITIONS,
    Session,
    clip,
)
from protocol.messages import (
    MAX_NAME_CHARS,
    MAX_REASON_CHARS,
    MAX_RESPONSE_CHARS,
    MAX_SCORE,
    MIN_SCORE,
    Abort,
    Advertise,
    Assign,
    Item,
    Join,
    Response,
    Result,
    Score,
    ScoreEntry,
    Scores,
)
from protocol.structured import judged_prompt

__all__ = ["ParticipantSession"]

logger = logging.getLogger(__name__)


class ParticipantSession(Session):
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
        self.model = clip(model or "unknown", MAX_NAME_CHARS)
        self.backend = clip(backend or "unknown", MAX_NAME_CHARS)
        self.grace_ms = grace_ms
        self.batch_scores = batch_scores
        self.join = join
        self.give_up_at: int | None = None
        self.generating = False
        self.generated = False
        self.response: Response | None = None  # what this executor sent
        self.items: dict[str, Item] = {}  # verifier: what the leader forwarded, by label
        self.items_total = 0
        self.judging: set[str] = set()  # labels whose Judge effect is out
        self.judged: dict[str, ScoreEntry | None] = {}  # None: judgement failed
        self.unsent: list[ScoreEntry] = []  # batch mode: judged, not yet published
        self.unsent_failed: list[str] = []  # batch mode: could not judge, not yet reported
        self.judge_model = "unknown"
        self.on_judge_topic = False
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
            # the judge topic now, not at assignment: no item can outrun the subscription
            self.on_judge_topic = True
            effects.append(Subscribe(judge_topic(self.task)))
            self.joined[self.me] = Join(self.model, self.backend, self.capabilities)
            effects.append(Publish(leader_topic(self.task), self.task, self.joined[self.me]))
        effects.append(StageChanged(self.task, self.stage, self.next_deadline()))
        return effects

    # -- local work -----------------------------------------------------------------------------
    def generation_done(
        self, text: str, model: str, gen_ms: int, now_ms: int, **details: Any
    ) -> list[Effect]:
        """The local model answered: send the response to the leader (unless too late).

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
            response = Response(
                text, clip(model or self.model, MAX_NAME_CHARS), max(0, int(gen_ms)), **details
            )
        except ProtocolError as exc:
            self.generated = False
            return effects + self.generation_failed(f"unusable answer: {exc}", now_ms)
        self.response = response
        effects.append(Publish(leader_topic(self.task), self.task, self.response))
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
        self, label: str, score: float, reason: str, judge_model: str, now_ms: int
    ) -> list[Effect]:
        """The local judge scored the item under ``label``: publish (or batch) the score.

        ``score`` is clamped to [0.00, 0.99]; a non-number or NaN counts as a failed judgement.
        """
        self._require_started()
        effects = self._expire(now_ms)
        if self.role != Role.VERIFIER or label not in self.judging or self.finished:
            return effects
        self.judging.discard(label)
        if self.verify_deadline is not None and now_ms >= self.verify_deadline:
            self.judged[label] = None
            effects.append(Notice(self.task, f"judgement of {label} finished after the deadline"))
            return effects
        if isinstance(score, bool) or not isinstance(score, int | float) or math.isnan(score):
            return effects + self._could_not_judge(label, f"judge gave no usable score ({score!r})")
        # the judge clamps already; clamping again keeps a stray 1.0 from costing the score
        score = min(max(float(score), MIN_SCORE), MAX_SCORE)
        entry = ScoreEntry(label, score, clip(str(reason), MAX_REASON_CHARS))
        self.judged[label] = entry
        self.judge_model = clip(judge_model or "unknown", MAX_NAME_CHARS)
        if self.batch_scores:
            self.unsent.append(entry)
            effects += self._flush_batch()
        else:
            body = Score(entry.label, entry.score, entry.reason, self.judge_model)
            effects.append(Publish(leader_topic(self.task), self.task, body))
        return effects + self._check_scores_complete()

    def judgement_failed(self, label: str, error: str, now_ms: int) -> list[Effect]:
        self._require_started()
        effects = self._expire(now_ms)
        if self.role != Role.VERIFIER or label not in self.judging:
            return effects
        self.judging.discard(label)
        if self.verify_deadline is not None and now_ms >= self.verify_deadline:
            self.judged[label] = None
            return [*effects, Notice(self.task, f"judging {label} failed ({error})")]
        return effects + self._could_not_judge(
            label, f"judging {label} failed ({error}); that score will be missing"
        )

    def _could_not_judge(self, label: str, notice: str) -> list[Effect]:
        """Tell the leader (in the batch, or at once) that this cell will stay missing, so it
        need not wait for it until the verify deadline."""
        self.judged[label] = None
        effects: list[Effect] = [Notice(self.task, notice)]
        if self.batch_scores:
            self.unsent_failed.append(label)
            effects += self._flush_batch()
        else:
            body = Scores((), self.judge_model, failed=(label,))
            effects.append(Publish(leader_topic(self.task), self.task, body))
        return effects + self._check_scores_complete()

    def _items_complete(self) -> bool:
        return bool(self.items_total) and len(self.items) >= self.items_total

    def _flush_batch(self) -> list[Effect]:
        """Batch mode: publish once nothing is being judged and nothing more is expected."""
        if not (self.unsent or self.unsent_failed) or self.judging:
            return []
        if not self._exec_over() and not self._items_complete():
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
            return self._end("give_up", "no assignment from the leader before the join deadline")
        if self.stage == Stage.EXECUTE:
            return self._close_execute()
        if self.stage == Stage.VERIFY:
            effects = [self._go("scores_complete")]
            return effects + self._flush_batch()
        return self._end("give_up", "no result from the leader after the verify deadline")

    def _close_execute(self) -> list[Effect]:
        effects: list[Effect] = [self._go("items_complete")]
        effects += self._flush_batch()
        return effects + self._check_scores_complete()

    def _check_scores_complete(self) -> list[Effect]:
        judged_all = self.role != Role.VERIFIER or set(self.judged) >= set(self.items)
        if self.stage == Stage.VERIFY and not self.judging and judged_all:
            return [self._go("scores_complete")]
        return []

    def _end(self, trigger: str, reason: str, result: Result | None = None) -> list[Effect]:
        """Leave the session: the stage, what the node reports, the slot, the topics."""
        effects: list[Effect] = [self._go(trigger)]
        if result is not None:
            self.result = result
            effects.append(Finished(self.task, result))
        elif trigger != "release":
            self.abort_reason = reason
            cause = AbortCause.LEADER if trigger == "abort" else AbortCause.GAVE_UP
            effects.append(Aborted(self.task, reason, cause))
        else:
            self.abort_reason = reason
        if self.join:
            effects.append(Released(self.task, reason))
        effects.append(Unsubscribe(self.task))
        if self.on_judge_topic:
            self.on_judge_topic = False
            effects.append(Unsubscribe(judge_topic(self.task)))
        return effects

    # -- message handlers -----------------------------------------------------------------------
    def _on_join(self, env: Envelope, now_ms: int) -> list[Effect]:
        return []  # joins are the leader's business (seen here only without the hub)

    _on_response = _on_join
    _on_score = _on_join
    _on_scores = _on_join

    def _from_leader(self, env: Envelope) -> list[Effect] | None:
        if env.sender != self.leader:
            return self._reject(env, "not_leader", f"{env.kind} from a peer that did not advertise")
        return None

    def _hold(self, env: Envelope) -> list[Effect]:
        if len(self._early) >= MAX_EARLY:
            return self._reject(env, "too_early", "before the assignment")
        self._early.append(env)
        return []

    def _on_assign(self, env: Envelope, now_ms: int) -> list[Effect]:
        rejected = self._from_leader(env)
        if rejected is not None:
            return rejected
        body = env.body
        assert isinstance(body, Assign)
        self.executors, self.verifiers = body.executors, body.verifiers
        self.requested = len(body.executors) + len(body.verifiers)
        self.prompt = body.prompt
        self.exec_deadline = now_ms + self.advertise.exec_ms
        self.verify_deadline = self.exec_deadline + self.advertise.verify_ms
        self.give_up_at = self.verify_deadline + self.grace_ms
        if self.me in body.executors:
            self.role = Role.EXECUTOR
        elif self.me in body.verifiers:
            self.role = Role.VERIFIER
        elif self.join:
            taken = len(body.executors) + len(body.verifiers)
            return self._end("release", f"not picked: the leader took {taken} of its joiners")
        else:
            self.role = Role.OBSERVER
        effects: list[Effect] = [self._go("assign")]
        if self.role == Role.EXECUTOR:
            self.generating = True
            if self.on_judge_topic:  # blind: an executor is sent no other answer
                self.on_judge_topic = False
                effects.append(Unsubscribe(judge_topic(self.task)))
            effects.append(
                Generate(self.task, self.prompt, self.exec_deadline, *_generation(self.advertise))
            )
        early, self._early = self._early, []
        for held in early:
            effects += self.receive(held, now_ms)
        return effects

    def _on_item(self, env: Envelope, now_ms: int) -> list[Effect]:
        rejected = self._from_leader(env)
        if rejected is not None:
            return rejected
        if self.stage == Stage.ADVERTISE:
            return self._hold(env)
        if self.role != Role.VERIFIER:
            return []  # an executor never judges (the item may beat its unsubscription)
        item = env.body
        assert isinstance(item, Item)
        if item.label in self.items:
            return self._reject(env, "duplicate", f"item {item.label}")
        if self.items_total and item.total != self.items_total:
            return self._reject(env, "inconsistent", f"item {item.label}: total changed")
        if self.verify_deadline is not None and now_ms >= self.verify_deadline:
            return self._reject(env, "late", f"item {item.label}")
        self.items_total = item.total
        self.items[item.label] = item
        self.judging.add(item.label)
        assert self.verify_deadline is not None
        question = judged_prompt(self.advertise, self.prompt)  # tools offered, if any
        effects: list[Effect] = [
            Judge(self.task, question, item.label, item.text, self.verify_deadline)
        ]
        if self.stage == Stage.EXECUTE and self._items_complete():
            effects += self._close_execute()
        return effects

    def _on_reveal(self, env: Envelope, now_ms: int) -> list[Effect]:
        # the node stores it; the audit (protocol.transcript) reads it
        return self._from_leader(env) or []

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
        return self._end("result", "finished", result)

    def _on_abort(self, env: Envelope, now_ms: int) -> list[Effect]:
        rejected = self._from_leader(env)
        if rejected is not None:
            return rejected
        assert isinstance(env.body, Abort)
        return self._end("abort", env.body.reason)

    # -- view -----------------------------------------------------------------------------------
    def _live_view(self):  # type: ignore[no-untyped-def]
        texts: dict[bytes, str | None] = dict.fromkeys(self.executors)
        if self.response is not None:
            texts[self.me] = self.response.text
        matrix = {ex: dict.fromkeys(self.verifiers) for ex in self.executors}
        averages: dict[bytes, float | None] = dict.fromkeys(self.executors)
        counts = dict.fromkeys(self.executors, 0)
        return texts, matrix, averages, counts, ()


def _generation(adv: Advertise) -> tuple[object, ...]:
    """The Generate fields after the deadline: the advertisement's params and generation."""
    return (adv.params, adv.options, adv.format, adv.tools, adv.tool_choice)
