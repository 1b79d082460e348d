"""Tally and role split: the arithmetic of a session, pure and deterministic.

Aggregators (per executor, over the scores its response received):

* ``mean`` (default) — the flat average, the original's rule.
* ``median`` — middle value (mean of the two middle values for an even count).
* ``trimmed`` — drop ``floor(n * TRIM_FRACTION)`` lowest and highest scores, but at least one at
  each end once there are 3 or more scores, then average the rest. Resists one outlier judge.

A score that never arrived is *missing*: it is left out of the aggregate (never counted as 0.00)
and shows as ``None`` in the matrix. An executor with no score at all has no aggregate (``None``)
and cannot win.

Tie-break (deterministic, same on every node): highest aggregate (compared after rounding to
9 decimals so float noise cannot decide), then more scores received, then the lowest peer-ID
bytes.

Role split (both never put a peer in both roles and always give at least one of each):

* ``original`` — the Rust version's rule: a uniform split index ``k`` in ``[1, n-1]`` over the
  joined list in join order; the first ``k`` execute, the rest verify. Reproducible given the RNG.
* ``balanced`` (default) — sort the joined peers (so arrival order does not matter), shuffle with
  the RNG, then ``n // 2`` execute and the rest verify: verifiers are never fewer than executors,
  because each average is only as good as the number of judges behind it, while every extra
  executor multiplies the verifiers' work. With 2 joiners: 1 and 1.
"""

from __future__ import annotations

import logging
import random
import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from protocol.messages import AGGREGATORS, MAX_SCORE, MIN_SCORE, Result

__all__ = [
    "AGGREGATORS",
    "SPLITS",
    "TRIM_FRACTION",
    "Tally",
    "aggregate",
    "rank_key",
    "split_roles",
    "tally",
]

logger = logging.getLogger(__name__)

TRIM_FRACTION = 0.2
SPLITS = ("balanced", "original")
_TIE_DECIMALS = 9


def _trimmed(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    cut = int(n * TRIM_FRACTION)
    if n >= 3:
        cut = max(cut, 1)
    kept = ordered[cut : n - cut] if n - 2 * cut > 0 else ordered
    return sum(kept) / len(kept)


def aggregate(values: Sequence[float], method: str = "mean") -> float | None:
    """Aggregate one executor's scores; ``None`` when there are none."""
    if method not in AGGREGATORS:
        raise ValueError(f"unknown aggregator {method!r}; choose one of {', '.join(AGGREGATORS)}")
    if not values:
        return None
    if method == "mean":
        value = sum(values) / len(values)
    elif method == "median":
        value = float(statistics.median(values))
    else:
        value = _trimmed(values)
    # float summation may land a hair outside [0, 0.99] (0.99 * 3 / 3); Result would reject it
    return min(max(value, MIN_SCORE), MAX_SCORE)


def rank_key(executor: bytes, average: float, count: int) -> tuple[float, int, bytes]:
    """Sort key: the smallest key wins (see the module docstring for the rule)."""
    return (-round(average, _TIE_DECIMALS), -count, executor)


@dataclass(frozen=True, slots=True)
class Tally:
    """Everything a result says, computed from what arrived."""

    aggregator: str
    executors: tuple[bytes, ...]
    verifiers: tuple[bytes, ...]
    scores: dict[bytes, dict[bytes, float | None]]
    averages: dict[bytes, float | None]
    counts: dict[bytes, int]
    responded: tuple[bytes, ...]
    missing: tuple[bytes, ...]
    winner: bytes | None
    winner_score: float | None

    def to_result(self, text: str) -> Result:
        """The ``result`` body; ``text`` is the winner's response ("" without a winner)."""
        return Result(
            winner=self.winner,
            score=self.winner_score,
            text=text if self.winner is not None else "",
            aggregator=self.aggregator,
            averages=dict(self.averages),
            counts=dict(self.counts),
            scores={e: dict(row) for e, row in self.scores.items()},
            missing=self.missing,
        )


def tally(
    executors: Sequence[bytes],
    verifiers: Sequence[bytes],
    scores: Mapping[bytes, Mapping[bytes, float]],
    *,
    responded: Collection[bytes] | None = None,
    aggregator: str = "mean",
) -> Tally:
    """Tally ``scores[executor][verifier]`` over the assigned roles.

    Only executors in ``responded`` (default: all) are ranked; scores for others, scores from
    unassigned verifiers and self-scores are ignored, so a caller cannot smuggle them in.
    ``missing``: executors that did not respond, then verifiers that scored none of the
    responses (only when there was something to score), each in assignment order.
    """
    if aggregator not in AGGREGATORS:
        raise ValueError(
            f"unknown aggregator {aggregator!r}; choose one of {', '.join(AGGREGATORS)}"
        )
    executors = tuple(executors)
    verifiers = tuple(verifiers)
    answered = set(executors if responded is None else responded) & set(executors)
    matrix: dict[bytes, dict[bytes, float | None]] = {}
    averages: dict[bytes, float | None] = {}
    counts: dict[bytes, int] = {}
    for ex in executors:
        row_in = scores.get(ex, {}) if ex in answered else {}
        row = {ver: (row_in.get(ver) if ver != ex else None) for ver in verifiers}
        values = [v for v in row.values() if v is not None]
        matrix[ex] = row
        averages[ex] = aggregate(values, aggregator)
        counts[ex] = len(values)
    missing = [ex for ex in executors if ex not in answered]
    if answered:
        missing += [ver for ver in verifiers if all(matrix[ex][ver] is None for ex in answered)]
    ranked = [
        (rank_key(ex, avg, counts[ex]), ex) for ex, avg in averages.items() if avg is not None
    ]
    winner = min(ranked)[1] if ranked else None
    return Tally(
        aggregator=aggregator,
        executors=executors,
        verifiers=verifiers,
        scores=matrix,
        averages=averages,
        counts=counts,
        responded=tuple(ex for ex in executors if ex in answered),
        missing=tuple(missing),
        winner=winner,
        winner_score=averages[winner] if winner is not None else None,
    )


def split_roles(
    joined: Sequence[bytes],
    rng: random.Random,
    method: str = "balanced",
    executors: int = 0,
) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """Split joined peers into ``(executors, verifiers)``: disjoint, at least one each.

    ``executors`` > 0 asks for that many executors (picked at random; capped so that at least one
    verifier remains) whatever the method; 0 leaves the count to the method.
    """
    peers = list(dict.fromkeys(joined))  # de-duplicate, keep join order
    if len(peers) < 2:
        raise ValueError(f"need at least 2 joined peers to split roles, have {len(peers)}")
    if executors < 0:
        raise ValueError(f"executors must be >= 0, not {executors}")
    if executors:
        order = sorted(peers)
        rng.shuffle(order)
        k = min(executors, len(order) - 1)
        return tuple(order[:k]), tuple(order[k:])
    if method == "original":
        k = rng.randint(1, len(peers) - 1)
        return tuple(peers[:k]), tuple(peers[k:])
    if method == "balanced":
        order = sorted(peers)
        rng.shuffle(order)
        k = len(order) // 2
        return tuple(order[:k]), tuple(order[k:])
    raise ValueError(f"unknown split {method!r}; choose one of {', '.join(SPLITS)}")
