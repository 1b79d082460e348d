"""protocol.newcomers: fresh identities hold at most a share of the verifier seats."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.newcomers import limit_newcomers
from protocol.tally import split_roles

OLD = [bytes([1, i]) for i in range(4)]
NEW = [bytes([2, i]) for i in range(40)]


def test_sybil_crowd_gets_a_third_of_the_verifiers_at_most() -> None:
    rng = random.Random(7)
    joined = OLD + NEW
    executors, verifiers = split_roles(joined, rng)
    executors, verifiers = limit_newcomers(executors, verifiers, set(NEW), rng)
    new_verifiers = [v for v in verifiers if v in NEW]
    assert len(new_verifiers) <= len(verifiers) / 3
    assert set(executors) | set(verifiers) == set(joined), "nobody lost, nobody added"
    assert not set(executors) & set(verifiers)
    assert set(OLD) <= set(verifiers), "every established peer verifies"


def test_swap_keeps_counts_when_established_executors_exist() -> None:
    executors, verifiers = (OLD[0], OLD[1]), (NEW[0], NEW[1], OLD[2])
    ex, ve = limit_newcomers(executors, verifiers, {NEW[0], NEW[1]}, random.Random(1))
    assert len(ex) == 2 and len(ve) == 3
    assert sum(v in NEW for v in ve) == 1
    assert sum(e in NEW for e in ex) == 1


def test_not_enough_established_leaves_the_split_alone() -> None:
    executors, verifiers = (NEW[0],), (NEW[1], NEW[2], OLD[0])
    assert limit_newcomers(executors, verifiers, set(NEW), random.Random(1)) == (
        executors,
        verifiers,
    )


def test_no_swap_partner_moves_the_newcomer_to_execute() -> None:
    executors, verifiers = (NEW[0],), (NEW[1], NEW[2], OLD[0], OLD[1])
    ex, ve = limit_newcomers(executors, verifiers, set(NEW), random.Random(1))
    assert len(ve) == 3 and {OLD[0], OLD[1]} <= set(ve) and len(ex) == 2


def test_reproducible_from_the_seed_and_bad_share() -> None:
    ex, ve = split_roles(OLD + NEW[:8], random.Random(3))
    runs = {limit_newcomers(ex, ve, set(NEW), random.Random(5)) for _ in range(3)}
    assert len(runs) == 1
    with pytest.raises(ValueError):
        limit_newcomers(ex, ve, set(NEW), random.Random(5), max_share=1.5)


@given(
    n_old=st.integers(0, 6),
    n_new=st.integers(0, 20),
    seed=st.integers(0, 2**32),
    share=st.sampled_from([0.0, 0.25, 1 / 3, 0.5, 1.0]),
)
def test_invariants(n_old: int, n_new: int, seed: int, share: float) -> None:
    joined = OLD[:n_old] + NEW[:n_new]
    if len(joined) < 2:
        return
    rng = random.Random(seed)
    ex, ve = split_roles(joined, rng)
    ex2, ve2 = limit_newcomers(ex, ve, set(NEW), rng, max_share=share)
    assert sorted(ex2 + ve2) == sorted(joined)
    assert ex2 and ve2 and not set(ex2) & set(ve2)
    if n_old >= 2:
        assert sum(v in NEW for v in ve2) <= int(share * len(ve2) + 1e-9) or all(
            e in NEW for e in ex2
        )


def test_the_leader_applies_the_rule_at_assignment() -> None:
    from protocol.newcomers import NewcomerRule
    from tests.protocol.helpers import Swarm

    swarm = Swarm(providers=6, auto_assign_at=6)
    old = swarm.provider_ids[:2]
    seen = {p: swarm.now - 3_600_000 for p in old}  # the first two: seen an hour ago
    swarm.leader.newcomers = NewcomerRule(first_seen=seen, newcomer_ms=600_000, max_share=0.0)
    while swarm.queue and not swarm.leader.verifiers:
        swarm.step_delivery()
    assert swarm.leader.verifiers, "the leader assigned"
    assert set(swarm.leader.verifiers) <= set(old), "newcomers got no verifier seat"
