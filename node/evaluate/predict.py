"""What the simulation's parameters predict for each method, computed exactly (no sampling).

The model (as :mod:`node.slm.sim` plays it on the generated kinds):

* each of ``E`` executors answers correctly with probability ``p``, otherwise gives one of the
  question's ``K`` plausible wrong answers, uniformly;
* each of ``V`` verifiers judges each *distinct* answer (a judge grades the answer, not who gave
  it) and is right about it with probability ``q``: "correct" -> 0.85, "wrong" -> 0.15. A lazy
  judge gives 0.50 to everything (``q=None``);
* the leader's mean per executor decides; equal means fall to the protocol's tie-break (lowest
  peer ID), which is independent of correctness: a uniformly drawn executor among the tied;
* the majority vote takes the most frequent answer, ties drawn uniformly among the tied answers;
* a single model is right with probability ``p_single``.

Per question: the winner is correct iff the correct answer is among the highest-scored answers
and the tie-break lands on one of its executors. Summing over how the ``E`` executors split
between the right answer and the ``K`` wrong ones (a multinomial) and, for each distinct answer,
how many judges call it right (a binomial), gives the exact probability.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class SimSetting:
    executors: int
    verifiers: int
    p: float
    q: float | None  # None: lazy judges (every answer 0.50)
    p_single: float


def _splits(e: int, k: int) -> Iterator[tuple[int, tuple[int, ...], float]]:
    """(correct count, wrong counts per wrong answer, probability factor without p) for every
    way ``e`` executors split over 1 right and ``k`` wrong answers."""
    for counts in itertools.product(range(e + 1), repeat=k + 1):
        if sum(counts) != e:
            continue
        ways = math.factorial(e)
        for c in counts:
            ways //= math.factorial(c)
        yield counts[0], counts[1:], ways


def _binom(n: int, p: float) -> list[float]:
    return [math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(n + 1)]


@lru_cache(maxsize=256)
def majority(e: int, k: int, p: float) -> float:
    total = 0.0
    for c, wrong, ways in _splits(e, k):
        prob = ways * p**c * ((1 - p) / k) ** (e - c) if k else (1.0 if c == e else 0.0)
        if c == 0:
            continue
        top = max((c, *wrong))
        if c == top:
            total += prob / (1 + sum(1 for w in wrong if w == top))
    return total


@lru_cache(maxsize=256)
def swarm(e: int, v: int, k: int, p: float, q: float | None) -> float:
    if q is None:
        return p  # every answer 0.50: the tie-break picks an executor regardless of its answer
    right_dist, wrong_dist = _binom(v, q), _binom(v, 1 - q)
    total = 0.0
    for c, wrong, ways in _splits(e, k):
        if c == 0:
            continue
        prob = ways * p**c * ((1 - p) / k) ** (e - c) if k else (1.0 if c == e else 0.0)
        present = [w for w in wrong if w > 0]
        win = 0.0
        for level, p_level in enumerate(right_dist):
            # each present wrong answer: below the right one, level with it, or above (lost)
            below = sum(wrong_dist[:level])
            equal = wrong_dist[level]
            for ties in itertools.product((False, True), repeat=len(present)):
                pr = p_level
                tied = 0
                for count, is_tied in zip(present, ties, strict=True):
                    pr *= equal if is_tied else below
                    tied += count if is_tied else 0
                win += pr * c / (c + tied)
        total += prob * win
    return total


def predict(setting: SimSetting, wrong_counts: Sequence[int]) -> dict[str, float]:
    """Predicted accuracy per method over questions with ``wrong_counts[i]`` plausible wrong
    answers each (the mean of the per-question probabilities)."""
    n = len(wrong_counts)
    if n == 0:
        return {}
    s = setting
    return {
        "swarm": sum(swarm(s.executors, s.verifiers, k, s.p, s.q) for k in wrong_counts) / n,
        "majority": sum(majority(s.executors, k, s.p) for k in wrong_counts) / n,
        "executor": s.p,
        "single": s.p_single,
    }
