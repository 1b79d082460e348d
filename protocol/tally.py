"""Tally and role split: the arithmetic of a session, pure and deterministic.

Aggregators (per executor, over the scores its response received):

* ``robust`` (default for sessions, :data:`DEFAULT_AGGREGATOR`) — a reputation-weighted median
  with two-sided clipping, after Bittensor's Yuma consensus (stake-weighted median, weights
  clipped to consensus). Each verifier ``v`` has a weight ``w_v`` (from the leader's reputation
  ledger, see :mod:`protocol.reputation`; 1.0 each without one), floored at ``min_weight`` and
  rounded to 4 decimals. The *consensus* ``c`` is the weighted median of the scores; every score
  is clipped into ``[c - clip, c + clip]``; the aggregate is the weighted mean of the clipped
  scores, rounded to 6 decimals. A colluding minority can move the median only a little and its
  clipped scores at most ``clip`` from it, so it cannot lift a poor answer over a good one; the
  mean of the clipped band keeps more information than the bare median when judges are honest.
  ``clip = 0`` is the weighted median, ``clip >= 0.99`` the weighted mean.
* ``mean`` — the flat average, the original's rule.
* ``median`` — middle value (mean of the two middle values for an even count).
* ``trimmed`` — drop ``floor(n * TRIM_FRACTION)`` lowest and highest scores, but at least one at
  each end once there are 3 or more scores, then average the rest. Resists one outlier judge.

Only ``robust`` uses weights and parameters; both are part of :class:`Tally` (every verifier's
effective weight, every parameter with its value), so a signed result can carry them and an
audit can recompute the tally exactly: weights become integers (units of 1/10,000) before any
sum, so the weighted median is exact and the remaining float sums run in a fixed order.

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

With ``weights`` (selection weights from the reputation ledger,
:meth:`protocol.reputation.Ledger.selection_weight`) the *verifiers* are drawn by weight,
without replacement (Efraimidis-Spirakis: key ``u ** (1 / w)`` per peer, highest keys verify),
over the sorted joiners so arrival order does not matter; everyone else executes. A weight is
floored at :data:`SELECTION_FLOOR`, so a newcomer still verifies now and then and can earn
standing, and a handful of established peers never hold the panel alone. Executors are the
rest (they are not drawn separately: every joiner gets a seat, so one draw decides both): a bad
answer only loses, its judges score it, while a bad judge can crown one, so the judging seats
are the ones worth guarding.

When every joiner gets a role, weighting only decides *which* role: a flood of fresh keys then
fills the executor seats with the attacker's answers (``rnet sim`` measures the cost). ``seats``
lets a leader that recruited more joiners than it needs seat only that many, drawn by the same
weights: a peer's chance of any role, and so of a judging seat, rises with its reputation.
"""

from __future__ import annotations

import logging
import math
import random
import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from protocol.messages import AGGREGATORS, MAX_SCORE, MIN_SCORE, Result

__all__ = [
    "AGGREGATORS",
    "DEFAULT_AGGREGATOR",
    "ROBUST_PARAMS",
    "SELECTION_FLOOR",
    "SPLITS",
    "TRIM_FRACTION",
    "Tally",
    "aggregate",
    "rank_key",
    "robust_params",
    "split_roles",
    "tally",
    "weighted_median",
]

logger = logging.getLogger(__name__)

DEFAULT_AGGREGATOR = "robust"
TRIM_FRACTION = 0.2
SPLITS = ("balanced", "original")
_TIE_DECIMALS = 9
# robust: half-width of the band around the consensus, and the weight floor of any verifier
ROBUST_PARAMS: Mapping[str, float] = {"clip": 0.1, "min_weight": 0.05}
_PARAM_RANGES = {"clip": (0.0, 1.0), "min_weight": (0.0001, 1.0)}
WEIGHT_DECIMALS = 4
_WEIGHT_UNITS = 10**WEIGHT_DECIMALS
_ROBUST_DECIMALS = 6
SELECTION_FLOOR = 0.05


def _trimmed(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    cut = int(n * TRIM_FRACTION)
    if n >= 3:
        cut = max(cut, 1)
    kept = ordered[cut : n - cut] if n - 2 * cut > 0 else ordered
    return sum(kept) / len(kept)


def robust_params(params: Mapping[str, float] | None = None) -> dict[str, float]:
    """Every ``robust`` parameter with its value: the defaults, overridden by ``params``.

    Raises ``ValueError`` for an unknown name or a value out of range.
    """
    out = dict(ROBUST_PARAMS)
    for name, value in (params or {}).items():
        if name not in _PARAM_RANGES:
            raise ValueError(f"unknown robust parameter {name!r}; known: {', '.join(out)}")
        lo, hi = _PARAM_RANGES[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"robust parameter {name} must be a number, not {value!r}")
        if not (math.isfinite(value) and lo <= value <= hi):
            raise ValueError(f"robust parameter {name}={value} not in [{lo}, {hi}]")
        out[name] = float(value)
    return out


def _units(weight: float, min_weight: float) -> int:
    """A weight as an integer number of 1/10,000 (floored at ``min_weight``): exact sums."""
    return round(max(min(weight, 1.0), min_weight) * _WEIGHT_UNITS)


def weighted_median(values: Sequence[float], units: Sequence[int]) -> float:
    """The weighted median: the smallest value whose cumulative weight reaches half the total,
    the mean of it and the next when the half falls exactly between them (so equal weights
    give the ordinary median). Ties in value keep their order: the result does not depend on it.
    """
    pairs = sorted(zip(values, units, strict=True))
    total = sum(u for _, u in pairs)
    if total <= 0:
        raise ValueError("weighted median needs a positive total weight")
    cumulative = 0
    for i, (value, unit) in enumerate(pairs):
        cumulative += unit
        if 2 * cumulative == total and i + 1 < len(pairs):
            return (value + pairs[i + 1][0]) / 2
        if 2 * cumulative >= total:
            return value
    return pairs[-1][0]  # unreachable: the last cumulative is the total


def _robust(values: Sequence[float], units: Sequence[int], clip: float) -> float:
    consensus = weighted_median(values, units)
    lo, hi = consensus - clip, consensus + clip
    total = sum(units)
    weighted = sum(u * min(max(v, lo), hi) for v, u in zip(values, units, strict=True))
    return round(weighted / total, _ROBUST_DECIMALS)


def aggregate(
    values: Sequence[float],
    method: str = "mean",
    *,
    weights: Sequence[float] | None = None,
    params: Mapping[str, float] | None = None,
) -> float | None:
    """Aggregate one executor's scores; ``None`` when there are none.

    ``weights`` (one per value, ``robust`` only; default 1.0 each) and ``params`` (``robust``
    only, see :data:`ROBUST_PARAMS`) are ignored by the other methods.
    """
    if method not in AGGREGATORS:
        raise ValueError(f"unknown aggregator {method!r}; choose one of {', '.join(AGGREGATORS)}")
    if not values:
        return None
    if method == "robust":
        p = robust_params(params)
        if weights is None:
            weights = [1.0] * len(values)
        units = [_units(w, p["min_weight"]) for w in weights]
        value = _robust(values, units, p["clip"])
    elif method == "mean":
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
    """Everything a result says, computed from what arrived.

    ``weights``: each assigned verifier's effective weight (floored, rounded) and ``params``:
    every aggregator parameter, both empty unless the aggregator is ``robust``.
    """

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
    weights: dict[bytes, float] = field(default_factory=dict)
    params: dict[str, float] = field(default_factory=dict)

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
            params=dict(self.params),
            weights=dict(self.weights),
        )


def tally(
    executors: Sequence[bytes],
    verifiers: Sequence[bytes],
    scores: Mapping[bytes, Mapping[bytes, float]],
    *,
    responded: Collection[bytes] | None = None,
    aggregator: str = "mean",
    weights: Mapping[bytes, float] | None = None,
    params: Mapping[str, float] | None = None,
) -> Tally:
    """Tally ``scores[executor][verifier]`` over the assigned roles.

    Only executors in ``responded`` (default: all) are ranked; scores for others, scores from
    unassigned verifiers and self-scores are ignored, so a caller cannot smuggle them in.
    ``missing``: executors that did not respond, then verifiers that scored none of the
    responses (only when there was something to score), each in assignment order.

    ``weights[verifier]`` (``robust`` only): reputation weights in [0, 1]; a verifier without
    one counts at ``min_weight`` (a stranger), and ``weights=None`` means 1.0 for everyone (no
    ledger). ``params``: ``robust`` parameters (:data:`ROBUST_PARAMS`); ValueError if unknown.
    """
    if aggregator not in AGGREGATORS:
        raise ValueError(
            f"unknown aggregator {aggregator!r}; choose one of {', '.join(AGGREGATORS)}"
        )
    executors = tuple(executors)
    verifiers = tuple(verifiers)
    used_weights: dict[bytes, float] = {}
    used_params: dict[str, float] = {}
    if aggregator == "robust":
        used_params = robust_params(params)
        floor = used_params["min_weight"]
        for ver in verifiers:
            raw = 1.0 if weights is None else weights.get(ver, floor)
            used_weights[ver] = _units(raw, floor) / _WEIGHT_UNITS
    answered = set(executors if responded is None else responded) & set(executors)
    matrix: dict[bytes, dict[bytes, float | None]] = {}
    averages: dict[bytes, float | None] = {}
    counts: dict[bytes, int] = {}
    for ex in executors:
        row_in = scores.get(ex, {}) if ex in answered else {}
        row = {ver: (row_in.get(ver) if ver != ex else None) for ver in verifiers}
        given = [(ver, v) for ver, v in row.items() if v is not None]
        values = [v for _, v in given]
        matrix[ex] = row
        averages[ex] = aggregate(
            values,
            aggregator,
            weights=[used_weights[ver] for ver, _ in given] if used_weights else None,
            params=used_params or None,
        )
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
        weights=used_weights,
        params=used_params,
    )


def _weighted_order(
    peers: Sequence[bytes], rng: random.Random, weights: Mapping[bytes, float]
) -> list[bytes]:
    """``peers`` in a random order where heavier peers tend to come first (Efraimidis-Spirakis
    sampling without replacement; ``log(u) / w`` is ``log`` of the key ``u ** (1 / w)``)."""
    keyed = []
    for peer in sorted(peers):  # one draw per peer in a fixed order: reproducible from the rng
        weight = max(min(float(weights.get(peer, 0.0)), 1.0), SELECTION_FLOOR)
        u = rng.random() or 1e-300  # random() may return 0.0; log(0) is undefined
        keyed.append((math.log(u) / weight, peer))
    keyed.sort(key=lambda kp: (-kp[0], kp[1]))
    return [peer for _, peer in keyed]


def split_roles(
    joined: Sequence[bytes],
    rng: random.Random,
    method: str = "balanced",
    executors: int = 0,
    *,
    weights: Mapping[bytes, float] | None = None,
    split: str | None = None,
    seats: int = 0,
) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """Split joined peers into ``(executors, verifiers)``: disjoint, at least one each.

    ``executors`` > 0 asks for that many executors (picked at random; capped so that at least one
    verifier remains) whatever the method; 0 leaves the count to the method. ``split`` is a
    keyword spelling of ``method``. ``weights``: selection weights in [0, 1] (absent peers: the
    floor); the verifiers are then drawn by weight (module docstring), the count unchanged.
    ``seats`` (>= 2; 0: everyone): give roles to only that many of the joiners, drawn by weight
    (uniformly without weights); the others get no role (they watch).
    """
    if split is not None:
        method = split
    peers = list(dict.fromkeys(joined))  # de-duplicate, keep join order
    if len(peers) < 2:
        raise ValueError(f"need at least 2 joined peers to split roles, have {len(peers)}")
    if executors < 0:
        raise ValueError(f"executors must be >= 0, not {executors}")
    if method not in SPLITS:
        raise ValueError(f"unknown split {method!r}; choose one of {', '.join(SPLITS)}")
    if seats and seats < 2:
        raise ValueError(f"seats must be 0 (everyone) or >= 2, not {seats}")
    if seats and seats < len(peers):
        if weights is not None:
            seated = set(_weighted_order(peers, rng, weights)[:seats])
        else:
            order = sorted(peers)
            rng.shuffle(order)
            seated = set(order[:seats])
        peers = [p for p in peers if p in seated]  # join order kept for the original split
    if weights is not None:
        if executors:
            k = min(executors, len(peers) - 1)
        elif method == "original":
            k = rng.randint(1, len(peers) - 1)
        else:
            k = len(peers) // 2
        order = _weighted_order(peers, rng, weights)
        chosen = set(order[: len(peers) - k])
        # roles listed in sorted order: the draw order would leak who was heaviest
        return (
            tuple(p for p in sorted(peers) if p not in chosen),
            tuple(p for p in sorted(peers) if p in chosen),
        )
    if executors:
        order = sorted(peers)
        rng.shuffle(order)
        k = min(executors, len(order) - 1)
        return tuple(order[:k]), tuple(order[k:])
    if method == "original":
        k = rng.randint(1, len(peers) - 1)
        return tuple(peers[:k]), tuple(peers[k:])
    order = sorted(peers)
    rng.shuffle(order)
    k = len(order) // 2
    return tuple(order[:k]), tuple(order[k:])
