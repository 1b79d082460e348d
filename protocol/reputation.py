"""Reputation ledger: who judged well and whose answers scored well, from signed transcripts.

Pure (sans-IO): the node feeds it the finished sessions it holds (the signed score matrix and
canary reveals of each, as :class:`Transcript`) with times from its own clock; nothing here
reads a clock, a store or a global RNG. Two nodes fed the same transcripts compute the same
numbers.

Theory of operation
===================

*Evidence.* Each transcript adds, per peer, a value in [0, 1] with an evidence weight:

* a **verifier** earns its *agreement* with the session's consensus: for every executor it
  scored, the consensus is the ``robust`` aggregate (:mod:`protocol.tally`) of the *other*
  verifiers' scores, weighted by this ledger's current verifier weights (never the leader's
  claimed averages: a leader cannot write our ledger; leaving the judge out means a heavy judge
  cannot confirm itself). ``agreement = 1 - min(1, mean |score - consensus| / tolerance)``. It
  needs at least one other judge's score; with only one (a session of two judges), the
  judgement counts half: two peers agreeing is weaker evidence than a panel.
* a **verifier** that scored a **canary** (a response the leader knew was wrong) earns
  ``1 - score / 0.99`` with weight ``canary_weight``: a canary is ground truth, stronger than
  agreement with peers.
* an **executor** earns its consensus score over all verifiers, divided by 0.99.

A session led by this node (``me``) or by a ``trusted`` peer counts in full; one led by anybody
else counts with that leader's reputation as weight, so a fresh identity cannot mint standing
for its friends by staging sessions (after EigenTrust: trust flows from peers already trusted).

*Estimate.* Per peer and role the ledger keeps decayed sums ``good`` (value x weight) and ``n``
(weight). A judgement earning ``v`` counts ``1 + penalty * (1 - v)`` times (slow to earn, quick
to lose: a peer that judged well for weeks and then turns is found out in a few sessions, not
in as many as it spent earning its standing; an honest judge's steady value is unchanged). Reputation is a Beta-style mean with a low prior: ``(prior * k + good) / (k + n)``
with ``k = prior_strength``. A new identity starts at ``prior`` (0.1), so a thousand fresh keys
weigh what a hundred honest judges do, and each must earn its way up session by session; a
``trusted`` peer starts at ``trusted_prior``. Sums decay with a half-life (on the caller's
clock), so old standing, good or bad, fades back towards the prior.

*Outputs* (rounded to 4 decimals, in [0, 1]): :meth:`Ledger.reputation` (all evidence, shown to
users), :meth:`Ledger.verifier_weight` (verifier evidence only, for the ``robust`` tally:
answering well does not make a peer a good judge), and :meth:`Ledger.selection_weight` for the
role draw (:func:`protocol.tally.split_roles` draws judges by it), which is the same judging
record. ``rnet sim`` compared three draws: by overall reputation (peers whose answers score
badly, attackers included, are pushed into the answering seats: the winning answer got worse),
by judging record discounted for strong answers (better answers, but an attacker gains judging
seats by answering badly), and by judging record alone (neither effect; kept). A new identity
weighs 0.1, an established judge seven to eight times more; the draw's floor keeps newcomers
judging now and then. The dictionaries :meth:`Ledger.verifier_weights` /
:meth:`Ledger.selection_weights` give them for a set of peers.

*Bounds.* At most ``max_peers`` records (the one with the least evidence goes first, so a flood
of fresh keys evicts fresh keys), ``history`` entries per peer, and a window of recorded task
ids so a transcript seen twice counts once.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from protocol.messages import MAX_SCORE
from protocol.result import Result
from protocol.tally import aggregate
from protocol.transcript import AuditReport

__all__ = [
    "HistoryEntry",
    "Ledger",
    "PeerRecord",
    "ReputationParams",
    "Standing",
    "Transcript",
]

logger = logging.getLogger(__name__)

_DECIMALS = 4
_FULL_PANEL = 2  # other judges' scores for a judgement to count in full (fewer: in proportion)


@dataclass(frozen=True, slots=True)
class ReputationParams:
    """Every knob of the ledger; defaults are what a node uses."""

    half_life_ms: int = 7 * 24 * 3_600_000  # a week: standing fades unless renewed
    prior: float = 0.1  # a new identity's reputation
    trusted_prior: float = 0.8  # a peer the operator vouches for (``trusted``)
    prior_strength: float = 3.0  # the prior counts as this many sessions of evidence
    tolerance: float = 0.3  # mean distance from consensus at which agreement reaches 0
    canary_weight: float = 2.0  # a canary judgement counts as this many sessions
    # slow to earn, quick to lose: a judgement earning v counts (1 + penalty * (1 - v)) times
    penalty: float = 3.0
    max_peers: int = 4_096
    history: int = 32
    seen_tasks: int = 8_192

    def __post_init__(self) -> None:
        if self.half_life_ms <= 0:
            raise ValueError("half_life_ms must be > 0")
        for name in ("prior", "trusted_prior"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        for name in ("prior_strength", "tolerance", "canary_weight"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        if not self.penalty >= 0:
            raise ValueError("penalty must be >= 0")
        for name in ("max_peers", "history", "seen_tasks"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")


@dataclass(frozen=True, slots=True)
class Transcript:
    """What one finished session showed, from signed messages the node verified.

    ``scores[executor][verifier]``: the signed score matrix (``None``: missing). ``canaries``:
    for each canary item the leader revealed, ``{verifier: score}``. ``at_ms``: when the session
    ended, on the ledger owner's clock.
    """

    task: str
    leader: bytes
    at_ms: int
    scores: Mapping[bytes, Mapping[bytes, float | None]]
    canaries: Mapping[str, Mapping[bytes, float | None]] = field(default_factory=dict)

    @classmethod
    def from_result(
        cls,
        task: str,
        leader: bytes,
        result: Result,
        at_ms: int,
        canaries: Mapping[str, Mapping[bytes, float | None]] | None = None,
    ) -> Transcript:
        """From a verified result; its own canary scores unless ``canaries`` is given."""
        return cls(task, leader, at_ms, result.scores, dict(canaries or result.canaries))

    @classmethod
    def from_audit(cls, report: AuditReport, at_ms: int) -> Transcript | None:
        """From :func:`protocol.transcript.verify_transcript` of the envelopes a node holds:
        the score matrix replayed from the signed batches. ``None`` unless the audit passed
        with a result (an aborted or doubtful session teaches nothing)."""
        if not report.ok or not report.has_result or report.task is None or not report.leader:
            return None
        return cls(report.task, report.leader, at_ms, report.scores, dict(report.canaries))


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One line of a peer's history: what it did in a session and what it earned."""

    at_ms: int
    task: str
    role: str  # "verifier", "canary" or "executor"
    value: float  # earned, in [0, 1]
    weight: float  # evidence weight of the session


@dataclass(slots=True)
class PeerRecord:
    """Decayed evidence of one peer, as of ``updated_ms``."""

    peer: bytes
    first_seen_ms: int
    updated_ms: int
    verifier_good: float = 0.0
    verifier_n: float = 0.0
    executor_good: float = 0.0
    executor_n: float = 0.0
    sessions: int = 0  # transcripts it appeared in (not decayed)
    history: deque[HistoryEntry] = field(default_factory=deque)

    def decay_to(self, now_ms: int, half_life_ms: int) -> None:
        if now_ms <= self.updated_ms:
            return
        factor = 0.5 ** ((now_ms - self.updated_ms) / half_life_ms)
        self.verifier_good *= factor
        self.verifier_n *= factor
        self.executor_good *= factor
        self.executor_n *= factor
        self.updated_ms = now_ms


@dataclass(frozen=True, slots=True)
class Standing:
    """A peer's standing at one moment (what the console and ``rnet peers`` show)."""

    peer: bytes
    reputation: float
    verifier: float
    executor: float
    evidence: float  # decayed sessions' worth of evidence behind it
    sessions: int
    first_seen_ms: int | None
    last_seen_ms: int | None

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "reputation": self.reputation,
            "verifier": self.verifier,
            "executor": self.executor,
            "evidence": round(self.evidence, 3),
            "sessions": self.sessions,
            "first_seen_ms": self.first_seen_ms,
            "last_seen_ms": self.last_seen_ms,
        }


def _beta(prior: float, strength: float, good: float, n: float) -> float:
    return round((prior * strength + good) / (strength + n), _DECIMALS)


class Ledger:
    """The reputation of every peer this node has seen in a transcript (module docstring)."""

    def __init__(
        self,
        params: ReputationParams | None = None,
        *,
        me: bytes | None = None,
        trusted: Collection[bytes] = (),
    ) -> None:
        self.params = params or ReputationParams()
        self.me = me
        self.trusted = frozenset(trusted)
        self._records: dict[bytes, PeerRecord] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()

    # -- read side ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, peer: object) -> bool:
        return peer in self._records

    def _prior(self, peer: bytes) -> float:
        if peer in self.trusted or peer == self.me:
            return self.params.trusted_prior
        return self.params.prior

    def _decayed(self, peer: bytes, now_ms: int) -> PeerRecord | None:
        record = self._records.get(peer)
        if record is not None:
            record.decay_to(now_ms, self.params.half_life_ms)
        return record

    def standing(self, peer: bytes, now_ms: int) -> Standing:
        p, prior = self.params, self._prior(peer)
        r = self._decayed(peer, now_ms)
        if r is None:
            return Standing(peer, prior, prior, prior, 0.0, 0, None, None)
        k = p.prior_strength
        return Standing(
            peer,
            _beta(prior, k, r.verifier_good + r.executor_good, r.verifier_n + r.executor_n),
            _beta(prior, k, r.verifier_good, r.verifier_n),
            _beta(prior, k, r.executor_good, r.executor_n),
            r.verifier_n + r.executor_n,
            r.sessions,
            r.first_seen_ms,
            r.history[-1].at_ms if r.history else r.updated_ms,
        )

    def reputation(self, peer: bytes, now_ms: int) -> float:
        """All evidence (judging and answering): what users are shown."""
        return self.standing(peer, now_ms).reputation

    def verifier_weight(self, peer: bytes, now_ms: int) -> float:
        """Verifier evidence only: how much this peer's scores count in a ``robust`` tally."""
        return self.standing(peer, now_ms).verifier

    def verifier_weights(self, peers: Iterable[bytes], now_ms: int) -> dict[bytes, float]:
        return {peer: self.verifier_weight(peer, now_ms) for peer in peers}

    def selection_weight(self, peer: bytes, now_ms: int) -> float:
        """How strongly this peer is drawn for a judging seat: its judging record."""
        return self.standing(peer, now_ms).verifier

    def selection_weights(self, peers: Iterable[bytes], now_ms: int) -> dict[bytes, float]:
        return {peer: self.selection_weight(peer, now_ms) for peer in peers}

    def history(self, peer: bytes) -> tuple[HistoryEntry, ...]:
        record = self._records.get(peer)
        return tuple(record.history) if record is not None else ()

    def peers(self) -> tuple[bytes, ...]:
        return tuple(self._records)

    def records(self) -> tuple[PeerRecord, ...]:
        """The raw records (for a store to persist; feed them back with :meth:`restore`)."""
        return tuple(self._records.values())

    def restore(self, records: Iterable[PeerRecord], tasks: Iterable[str] = ()) -> None:
        """Load records saved from :meth:`records` (and the task ids already counted)."""
        for record in records:
            record.history = deque(record.history, maxlen=self.params.history)
            self._records[record.peer] = record
        for task in tasks:
            self._remember(task)
        self._evict()

    # -- write side -----------------------------------------------------------------------------
    def seen(self, task: str) -> bool:
        return task in self._seen

    def record(self, transcript: Transcript) -> dict[bytes, list[HistoryEntry]]:
        """Count one finished session; returns what each peer earned (empty if seen before)."""
        if transcript.task in self._seen:
            return {}
        self._remember(transcript.task)
        now = transcript.at_ms
        weight = self._session_weight(transcript.leader, now)
        earned: dict[bytes, list[HistoryEntry]] = {}

        def credit(peer: bytes, role: str, value: float, evidence: float) -> None:
            value = min(max(value, 0.0), 1.0)
            entry = HistoryEntry(now, transcript.task, role, round(value, _DECIMALS), weight)
            earned.setdefault(peer, []).append(entry)
            record = self._touch(peer, now)
            if role == "executor":
                record.executor_good += value * evidence
                record.executor_n += evidence
            else:
                evidence *= 1.0 + self.params.penalty * (1.0 - value)
                record.verifier_good += value * evidence
                record.verifier_n += evidence
            record.history.append(entry)

        # weights as they stood before this session: a session cannot vouch for itself
        scores = {
            ex: {v: s for v, s in row.items() if s is not None and v != ex}
            for ex, row in transcript.scores.items()
        }
        judges = sorted({v for row in scores.values() for v in row})
        weights = self.verifier_weights(judges, now)
        distances: dict[bytes, list[float]] = {}
        panel: dict[bytes, int] = {}  # the fewest other judges behind any of its consensuses
        for ex in sorted(scores):
            row = scores[ex]
            if not row:
                continue
            for ver in sorted(row):
                others = [v for v in sorted(row) if v != ver]
                if not others:
                    continue
                consensus = self._consensus(row, others, weights)
                distances.setdefault(ver, []).append(abs(row[ver] - consensus))
                panel[ver] = min(panel.get(ver, len(others)), len(others))
            consensus = self._consensus(row, sorted(row), weights)
            credit(ex, "executor", consensus / MAX_SCORE, weight)
        for ver in sorted(distances):
            mean = sum(distances[ver]) / len(distances[ver])
            evidence = weight * min(1.0, panel[ver] / _FULL_PANEL)
            credit(ver, "verifier", 1.0 - min(1.0, mean / self.params.tolerance), evidence)
        for label in sorted(transcript.canaries):
            for ver, value in sorted(transcript.canaries[label].items()):
                if value is not None:
                    evidence = weight * self.params.canary_weight
                    credit(ver, "canary", 1.0 - value / MAX_SCORE, evidence)
        for peer in earned:
            self._records[peer].sessions += 1
        self._evict()
        return earned

    # -- internals ------------------------------------------------------------------------------
    def _session_weight(self, leader: bytes, now_ms: int) -> float:
        if leader == self.me or leader in self.trusted:
            return 1.0
        return self.reputation(leader, now_ms)

    @staticmethod
    def _consensus(
        row: Mapping[bytes, float], judges: list[bytes], weights: Mapping[bytes, float]
    ) -> float:
        value = aggregate([row[v] for v in judges], "robust", weights=[weights[v] for v in judges])
        assert value is not None  # judges is never empty here
        return value

    def _touch(self, peer: bytes, now_ms: int) -> PeerRecord:
        record = self._records.get(peer)
        if record is None:
            record = PeerRecord(peer, now_ms, now_ms, history=deque(maxlen=self.params.history))
            self._records[peer] = record
        else:
            record.decay_to(now_ms, self.params.half_life_ms)
        return record

    def _remember(self, task: str) -> None:
        self._seen[task] = None
        while len(self._seen) > self.params.seen_tasks:
            self._seen.popitem(last=False)

    def _evict(self) -> None:
        excess = len(self._records) - self.params.max_peers
        if excess <= 0:
            return
        # least evidence first (fresh keys evict fresh keys), then the longest unseen
        ranked = sorted(
            self._records.values(),
            key=lambda r: (r.verifier_n + r.executor_n, r.updated_ms, r.peer),
        )
        for record in ranked[:excess]:
            del self._records[record.peer]
        logger.debug("reputation ledger full: %d records evicted", excess)
