"""Wilson intervals, exact McNemar, percentiles, and the exact predictions."""

from __future__ import annotations

import itertools
import random

import pytest

from node.evaluate.predict import SimSetting, majority, predict, swarm
from node.evaluate.stats import mcnemar_exact, paired, percentile, wilson


def test_wilson_matches_published_values() -> None:
    # Newcombe (1998), Table I: 81/263 -> 0.2553 to 0.3662; 15/148 -> 0.0624 to 0.1605
    lo, hi = wilson(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)
    lo, hi = wilson(15, 148)
    assert (round(lo, 4), round(hi, 4)) == (0.0624, 0.1605)
    assert wilson(0, 10)[0] == pytest.approx(0.0) and wilson(10, 10)[1] == pytest.approx(1.0)
    assert wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson(11, 10)


def test_wilson_contains_its_own_estimate_at_the_extremes() -> None:
    # in floating point the upper bound of 10/10 came out 0.9999999999999999: the report's
    # chart then drew a negative error bar and matplotlib refused it ('yerr' ... negative)
    for n in range(1, 200):
        assert wilson(n, n)[1] == 1.0 and wilson(0, n)[0] == 0.0
        for k in (1, n // 2, n - 1):
            lo, hi = wilson(k, n)
            assert lo <= k / n <= hi


def test_exact_mcnemar() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0
    # b=0, c=6: 2 * (1/2)^6
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_exact(1, 9) == pytest.approx(2 * (1 + 10) / 1024)
    t = paired([True, True, False, False, True], [True, False, True, False, False])
    assert (t.b, t.c) == (2, 1)
    with pytest.raises(ValueError):
        paired([True], [])


def test_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(101)), 95) == 95


def test_majority_closed_form() -> None:
    p = 0.6
    # 3 voters, 2 wrong answers: 2+ right, or 1 right and 2 different wrong -> a 3-way tie
    expected = p**3 + 3 * p**2 * (1 - p) + 3 * p * (1 - p) ** 2 * 0.5 / 3
    assert majority(3, 2, p) == pytest.approx(expected)
    assert majority(2, 1, p) == pytest.approx(p * p + 2 * p * (1 - p) / 2)  # a tie is a coin


def test_swarm_limits() -> None:
    p = 0.6
    # perfect judges: right whenever any executor is
    assert swarm(3, 3, 2, p, 1.0) == pytest.approx(1 - (1 - p) ** 3)
    # lazy judges (0.50 for all) add nothing: the tie-break picks a random executor
    assert swarm(3, 3, 2, p, None) == p
    # coin-flip judges draw per distinct answer, so scattered wrong answers get more draws
    assert swarm(3, 3, 2, p, 0.5) < p
    # judges that are always wrong pick a wrong answer whenever there is one
    assert swarm(3, 3, 3, p, 0.0) == pytest.approx(p**3)


def test_swarm_prediction_matches_a_brute_force_of_the_model() -> None:
    """Sample the model the prediction describes, independently of its enumeration."""
    e, v, k, p, q = 3, 2, 2, 0.6, 0.75
    rng = random.Random(1)
    wins, trials = 0, 30_000
    for _ in range(trials):
        answers = [0 if rng.random() < p else rng.randint(1, k) for _ in range(e)]
        deemed = {
            a: sum(rng.random() < (q if a == 0 else 1 - q) for _ in range(v)) for a in set(answers)
        }
        top = max(deemed.values())
        tied = [i for i in range(e) if deemed[answers[i]] == top]
        wins += answers[rng.choice(tied)] == 0
    assert swarm(e, v, k, p, q) == pytest.approx(wins / trials, abs=0.01)


def test_predict_averages_over_questions() -> None:
    s = SimSetting(executors=3, verifiers=3, p=0.6, q=0.9, p_single=0.7)
    out = predict(s, [1, 3])
    assert out["executor"] == 0.6 and out["single"] == 0.7
    assert out["majority"] == pytest.approx((majority(3, 1, 0.6) + majority(3, 3, 0.6)) / 2)
    assert predict(s, []) == {}
    assert list(itertools.islice(out, 2)) == ["swarm", "majority"]
