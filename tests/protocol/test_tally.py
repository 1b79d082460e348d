"""Tally: aggregators, missing is not zero, deterministic tie-break, role splits."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.tally import aggregate, split_roles, tally
from tests.protocol.strategies import PEERS

E1, E2, E3, V1, V2, V3 = PEERS[:6]


def test_mean_is_the_flat_average_and_default() -> None:
    t = tally([E1, E2], [V1, V2], {E1: {V1: 0.5, V2: 0.7}, E2: {V1: 0.2, V2: 0.3}})
    assert t.aggregator == "mean"
    assert t.averages[E1] == pytest.approx(0.6)
    assert t.averages[E2] == pytest.approx(0.25)
    assert t.winner == E1 and t.winner_score == pytest.approx(0.6)
    assert t.counts == {E1: 2, E2: 2}
    assert t.missing == ()


def test_median_and_trimmed() -> None:
    values = [0.1, 0.5, 0.6, 0.9]
    assert aggregate(values, "median") == pytest.approx(0.55)
    assert aggregate([0.0, 0.5, 0.6], "trimmed") == pytest.approx(0.5)  # one dropped each end
    assert aggregate([0.4, 0.6], "trimmed") == pytest.approx(0.5)  # too few to trim
    assert aggregate([], "median") is None
    with pytest.raises(ValueError):
        aggregate([0.1], "max")


def test_missing_score_is_not_zero() -> None:
    # V2 never scored E1: E1's mean is over V1 alone, not (0.9 + 0) / 2
    t = tally([E1, E2], [V1, V2], {E1: {V1: 0.9}, E2: {V1: 0.5, V2: 0.5}})
    assert t.averages[E1] == pytest.approx(0.9)
    assert t.scores[E1][V2] is None
    assert t.counts[E1] == 1
    assert t.winner == E1
    assert t.missing == ()  # V2 scored something, so it is not missing as a whole


def test_silent_verifier_and_silent_executor_are_missing() -> None:
    t = tally([E1, E2], [V1, V2], {E1: {V1: 0.4}}, responded=[E1])
    assert t.missing == (E2, V2)
    assert t.averages[E2] is None and t.scores[E2] == {V1: None, V2: None}


def test_scores_for_non_responders_and_strangers_are_ignored() -> None:
    t = tally([E1, E2], [V1], {E1: {V1: 0.1, V3: 0.99}, E2: {V1: 0.9}}, responded=[E1])
    assert t.winner == E1
    assert set(t.scores[E1]) == {V1}
    assert t.averages[E2] is None


def test_no_scores_no_winner() -> None:
    t = tally([E1], [V1], {})
    assert t.winner is None and t.winner_score is None
    assert t.missing == (V1,)
    result = t.to_result("ignored")
    assert result.winner is None and result.text == ""


def test_tie_break_count_then_lowest_peer_id() -> None:
    t = tally([E1, E2], [V1, V2], {E1: {V1: 0.5}, E2: {V1: 0.5, V2: 0.5}})
    assert t.winner == E2  # same average, more scores
    low, high = sorted([E1, E2])
    t = tally([high, low], [V1], {high: {V1: 0.5}, low: {V1: 0.5}})
    assert t.winner == low
    # float noise does not break a real tie: (0.1 + 0.2) / 2 vs 0.15
    t = tally([high, low], [V1, V2], {high: {V1: 0.1, V2: 0.2}, low: {V1: 0.15, V2: 0.15}})
    assert t.winner == low


def test_result_carries_matrix_averages_counts_missing() -> None:
    t = tally([E1, E2], [V1, V2], {E1: {V1: 0.3, V2: 0.5}}, responded=[E1])
    result = t.to_result("the answer")
    assert result.winner == E1 and result.text == "the answer"
    assert result.scores == {E1: {V1: 0.3, V2: 0.5}, E2: {V1: None, V2: None}}
    assert result.counts == {E1: 2, E2: 0}
    assert result.missing == (E2,)


def test_original_split_is_reproducible_uniform_index() -> None:
    joined = PEERS[:5]
    a = split_roles(joined, random.Random(7), "original")
    b = split_roles(joined, random.Random(7), "original")
    assert a == b
    k = random.Random(7).randint(1, 4)
    assert a == (tuple(joined[:k]), tuple(joined[k:]))


def test_balanced_split_ignores_arrival_order() -> None:
    joined = PEERS[:5]
    a = split_roles(joined, random.Random(3))
    b = split_roles(list(reversed(joined)), random.Random(3))
    assert a == b
    assert (len(a[0]), len(a[1])) == (2, 3)


def test_two_joiners_split_one_and_one() -> None:
    for method in ("balanced", "original"):
        for seed in range(20):
            ex, ver = split_roles(PEERS[:2], random.Random(seed), method)
            assert len(ex) == len(ver) == 1


def test_split_needs_two() -> None:
    with pytest.raises(ValueError):
        split_roles(PEERS[:1], random.Random(0))
    with pytest.raises(ValueError):
        split_roles([E1, E1], random.Random(0))
    with pytest.raises(ValueError):
        split_roles(PEERS[:3], random.Random(0), "alphabetical")


@given(
    st.lists(st.sampled_from(PEERS), min_size=2, max_size=12, unique=True),
    st.integers(0, 2**32),
    st.sampled_from(["balanced", "original"]),
    st.integers(0, 14),
)
def test_split_property(joined: list[bytes], seed: int, method: str, executors: int) -> None:
    ex, ver = split_roles(joined, random.Random(seed), method, executors)
    assert ex and ver
    assert not set(ex) & set(ver)
    assert set(ex) | set(ver) == set(joined)
    if executors:  # asked for: exactly that many, unless it would leave nobody to judge
        assert len(ex) == min(executors, len(joined) - 1)
    elif method == "balanced":
        assert len(ex) <= len(ver) <= len(ex) + 1


def test_split_with_a_fixed_executor_count() -> None:
    ex, ver = split_roles(PEERS[:6], random.Random(1), executors=2)
    assert (len(ex), len(ver)) == (2, 4)
    assert split_roles(PEERS[:6], random.Random(1), executors=2) == (ex, ver)  # seeded
    with pytest.raises(ValueError):
        split_roles(PEERS[:3], random.Random(0), executors=-1)


@given(
    st.dictionaries(
        st.sampled_from(PEERS[:4]),
        st.dictionaries(st.sampled_from(PEERS[4:8]), st.floats(0, 0.99), max_size=4),
        max_size=4,
    ),
    st.sampled_from(["robust", "mean", "median", "trimmed"]),
)
def test_winner_has_the_best_aggregate(scores: dict, method: str) -> None:
    t = tally(PEERS[:4], PEERS[4:8], scores, aggregator=method)
    ranked = [a for a in t.averages.values() if a is not None]
    if not ranked:
        assert t.winner is None
    else:
        assert t.winner_score == pytest.approx(max(ranked))
        for avg in ranked:
            assert 0.0 <= avg <= 0.99
        t.to_result("x")  # always a valid Result body


def test_aggregate_stays_in_score_range_despite_float_noise() -> None:
    assert sum([0.99] * 7) / 7 > 0.99  # the float noise this guards against
    t = tally([E1], PEERS[1:8], {E1: {v: 0.99 for v in PEERS[1:8]}})
    assert t.averages[E1] == 0.99
    t.to_result("x")


# --- robust: reputation-weighted median with two-sided clipping -------------------------------
def test_weighted_median_matches_the_median_for_equal_weights() -> None:
    from protocol.tally import weighted_median

    assert weighted_median([0.1, 0.5, 0.9], [1, 1, 1]) == 0.5
    assert weighted_median([0.1, 0.5, 0.6, 0.9], [1, 1, 1, 1]) == pytest.approx(0.55)
    assert weighted_median([0.1, 0.5, 0.9], [1, 1, 5]) == 0.9  # a heavy judge decides
    with pytest.raises(ValueError):
        weighted_median([0.1], [0])


def test_robust_without_weights_is_the_clipped_mean_around_the_median() -> None:
    # median 0.6; clip 0.1: 0.0 -> 0.5, 0.99 -> 0.7; mean of (0.5, 0.6, 0.6, 0.7) = 0.6
    assert aggregate([0.0, 0.6, 0.6, 0.99], "robust") == pytest.approx(0.6)
    assert aggregate([0.0, 0.6, 0.6, 0.99], "robust", params={"clip": 0.99}) == pytest.approx(
        (0.0 + 0.6 + 0.6 + 0.99) / 4
    )
    assert aggregate([0.2, 0.6, 0.7], "robust", params={"clip": 0.0}) == 0.6


def test_robust_resists_a_colluding_minority_the_mean_does_not() -> None:
    honest = [V1, V2, V3]
    colluders = PEERS[6:8]
    verifiers = honest + colluders
    scores = {
        E1: {**{v: 0.8 for v in honest}, **{c: 0.0 for c in colluders}},  # the good answer
        E2: {**{v: 0.3 for v in honest}, **{c: 0.99 for c in colluders}},  # the attacker's
    }
    assert tally([E1, E2], verifiers, scores, aggregator="mean").winner == E2
    assert tally([E1, E2], verifiers, scores, aggregator="median").winner == E1
    t = tally([E1, E2], verifiers, scores, aggregator="robust")
    assert t.winner == E1
    assert t.params == {"clip": 0.1, "min_weight": 0.05}
    assert t.weights == {v: 1.0 for v in verifiers}


def test_robust_weights_let_trusted_judges_outvote_a_colluding_majority() -> None:
    honest = [V1, V2]
    colluders = PEERS[6:9]
    verifiers = honest + colluders
    scores = {
        E1: {**{v: 0.8 for v in honest}, **{c: 0.0 for c in colluders}},
        E2: {**{v: 0.3 for v in honest}, **{c: 0.99 for c in colluders}},
    }
    assert tally([E1, E2], verifiers, scores, aggregator="robust").winner == E2
    weights = {V1: 0.9, V2: 0.8}  # colluders unknown to the ledger: the floor
    t = tally([E1, E2], verifiers, scores, aggregator="robust", weights=weights)
    assert t.winner == E1
    assert t.weights == {V1: 0.9, V2: 0.8, **{c: 0.05 for c in colluders}}


def test_robust_is_exactly_reproducible_and_checks_params() -> None:
    scores = {E1: {V1: 0.31, V2: 0.77, V3: 0.52}, E2: {V1: 0.5, V2: 0.5, V3: 0.49}}
    weights = {V1: 0.123456, V2: 0.5, V3: 0.98765}
    a = tally([E1, E2], [V1, V2, V3], scores, aggregator="robust", weights=weights)
    # an auditor recomputes from the tally's own (rounded) weights and params: same numbers
    b = tally(
        [E1, E2], [V1, V2, V3], scores, aggregator="robust", weights=a.weights, params=a.params
    )
    assert a.averages == b.averages and a.winner == b.winner
    assert a.weights[V1] == 0.1235
    for bad in ({"clip": -0.1}, {"clip": float("nan")}, {"width": 0.1}, {"min_weight": 0}):
        with pytest.raises(ValueError):
            tally([E1], [V1], {}, aggregator="robust", params=bad)


def test_non_robust_aggregators_carry_no_weights_or_params() -> None:
    t = tally([E1], [V1], {E1: {V1: 0.5}}, aggregator="median", weights={V1: 0.2})
    assert t.weights == {} and t.params == {} and t.averages[E1] == 0.5


# --- role selection by reputation ---------------------------------------------------------------
def test_weighted_split_favours_reputation_but_never_locks_newcomers_out() -> None:
    established, newcomers = PEERS[:4], PEERS[4:12]
    weights = {p: 0.9 for p in established}
    seats = dict.fromkeys(PEERS[:12], 0)
    for seed in range(400):
        ex, ver = split_roles(PEERS[:12], random.Random(seed), executors=8, weights=weights)
        assert len(ex) == 8 and len(ver) == 4 and not set(ex) & set(ver)
        for v in ver:
            seats[v] += 1
    per_established = sum(seats[p] for p in established) / len(established)
    per_newcomer = sum(seats[p] for p in newcomers) / len(newcomers)
    assert per_established > 4 * per_newcomer  # reputation counts
    assert all(seats[p] > 0 for p in newcomers)  # the floor: everyone judges now and then


def test_weighted_split_is_reproducible_and_order_blind() -> None:
    weights = {p: i / 12 for i, p in enumerate(PEERS)}
    a = split_roles(PEERS[:7], random.Random(5), weights=weights)
    b = split_roles(list(reversed(PEERS[:7])), random.Random(5), split="balanced", weights=weights)
    assert a == b
    assert (len(a[0]), len(a[1])) == (3, 4)
    with pytest.raises(ValueError):
        split_roles(PEERS[:3], random.Random(0), split="alphabetical", weights=weights)


def test_seats_leave_most_fresh_keys_without_a_role() -> None:
    established, fresh = PEERS[:6], PEERS[6:12]
    weights = {p: 0.9 for p in established}
    seated_fresh = 0
    for seed in range(200):
        ex, ver = split_roles(
            PEERS[:12], random.Random(seed), executors=2, weights=weights, seats=6
        )
        assert len(ex) == 2 and len(ver) == 4
        seated_fresh += len(set(ex + ver) & set(fresh))
    assert 0 < seated_fresh < 200 * 6 * 0.2  # the floor still seats a newcomer now and then
    ex, ver = split_roles(PEERS[:12], random.Random(1), seats=6)  # uniform without weights
    assert len(ex) + len(ver) == 6
    with pytest.raises(ValueError):
        split_roles(PEERS[:12], random.Random(1), seats=1)
