"""protocol/capacity.py: when a session holds a model slot, and which advert gets a freed slot."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from protocol.capacity import (
    MAX_REMEMBERED,
    PROMISE_FACTOR,
    GatheringAdverts,
    SlotUse,
    holds_slot,
    owes_work,
    peak_slots,
)
from protocol.effects import Role, Stage

A, B, C = b"leader-a", b"leader-b", b"leader-c"


def _work(stage: Stage, role: Role, *, generated=False, judging=0, finished=False) -> Any:
    """A participant's session as the slot rules read it; ``judging``: running judgements."""
    labels = {chr(ord("A") + i) for i in range(judging)}
    return SimpleNamespace(
        finished=finished, stage=stage, role=role, generated=generated, judging=labels
    )


def _holds(stage: Stage, role: Role, **kw: Any) -> bool:
    return holds_slot(_work(stage, role, **kw))


def test_a_slot_is_held_only_while_this_node_may_answer_or_judge() -> None:
    assert _holds(Stage.ADVERTISE, Role.PENDING)  # may be picked
    assert _holds(Stage.EXECUTE, Role.EXECUTOR)  # answering
    assert not _holds(Stage.EXECUTE, Role.EXECUTOR, generated=True)  # answered: free
    assert not _holds(Stage.EXECUTE, Role.VERIFIER)  # waiting for answers: nothing to run
    assert _holds(Stage.EXECUTE, Role.VERIFIER, judging=1)  # an answer came early: judging
    assert _holds(Stage.VERIFY, Role.VERIFIER, judging=2)  # judging
    assert not _holds(Stage.VERIFY, Role.VERIFIER)  # judged everything: free
    assert not _holds(Stage.EXECUTE, Role.OBSERVER)  # not picked: free at once
    assert not _holds(Stage.ABORTED, Role.PENDING, finished=True)
    assert not _holds(Stage.EXECUTE, Role.EXECUTOR, finished=True)


def test_a_verifier_waiting_for_answers_owes_work_without_holding_a_slot() -> None:
    def owes(stage: Stage, role: Role, **kw: Any) -> bool:
        return owes_work(_work(stage, role, **kw))

    assert owes(Stage.EXECUTE, Role.VERIFIER) and not _holds(Stage.EXECUTE, Role.VERIFIER)
    assert owes(Stage.ADVERTISE, Role.PENDING)
    assert owes(Stage.EXECUTE, Role.EXECUTOR) and not owes(
        Stage.EXECUTE, Role.EXECUTOR, generated=True
    )
    assert owes(Stage.VERIFY, Role.VERIFIER, judging=1) and not owes(Stage.VERIFY, Role.VERIFIER)
    assert not owes(Stage.EXECUTE, Role.VERIFIER, finished=True)
    assert not owes(Stage.EXECUTE, Role.OBSERVER)


def test_a_provider_promises_at_most_promise_factor_sessions_per_slot() -> None:
    assert PROMISE_FACTOR == 2
    assert SlotUse(1, 0, owed=1).free == 1  # one verifier waiting: may still join
    assert SlotUse(1, 0, owed=2).free == 0  # two sessions owe work from one slot: no more
    assert SlotUse(4, 1, owed=7).free == 3
    assert SlotUse(4, 1, owed=8).free == 0
    assert SlotUse(4, 1, owed=8) == SlotUse(4, 1)  # not announced: no news for presence


def test_slot_use() -> None:
    use = SlotUse(4, 3)
    assert use.free == 1 and str(use) == "3/4"
    assert SlotUse(1, 2).free == 0
    with pytest.raises(ValueError):
        SlotUse(-1, 0)


def test_freed_slots_go_round_robin_per_leader() -> None:
    waiting: GatheringAdverts[str] = GatheringAdverts()
    # a greedy leader advertises five sessions before the others advertise one or two
    for i in range(5):
        waiting.remember(f"a{i}", A, 1_000, f"a{i}")
    waiting.remember("b0", B, 1_000, "b0")
    waiting.remember("b1", B, 1_000, "b1")
    waiting.remember("c0", C, 1_000, "c0")
    order = [waiting.next(0) for _ in range(8)]
    assert order == ["a0", "b0", "c0", "a1", "b1", "a2", "a3", "a4"]
    assert waiting.next(0) is None and len(waiting) == 0


def test_a_leader_just_served_waits_behind_the_others() -> None:
    waiting: GatheringAdverts[str] = GatheringAdverts()
    waiting.remember("a0", A, 1_000, "a0")
    assert waiting.next(0) == "a0"  # joined at once (a slot was free)
    waiting.remember("a1", A, 1_000, "a1")
    waiting.remember("b0", B, 1_000, "b0")
    assert waiting.pending_leaders() == [B, A]
    assert [waiting.next(0), waiting.next(0)] == ["b0", "a1"]


def test_adverts_expire_at_their_join_deadline_and_are_kept_once() -> None:
    waiting: GatheringAdverts[str] = GatheringAdverts()
    waiting.remember("old", A, 100, "old")
    waiting.remember("old", A, 100, "old")  # seen again (re-announced)
    waiting.remember("new", B, 500, "new")
    assert len(waiting) == 2
    assert waiting.next(100) == "new"  # "old" passed its deadline
    assert len(waiting) == 0
    waiting.remember("x", A, 500, "x")
    waiting.forget("x")
    assert waiting.next(0) is None


def test_memory_is_bounded() -> None:
    waiting: GatheringAdverts[int] = GatheringAdverts()
    for i in range(MAX_REMEMBERED + 50):
        waiting.remember(f"t{i}", bytes([i % 7]), 10_000 + i, i)
    assert len(waiting) == MAX_REMEMBERED
    assert waiting.next(0) is not None


def test_a_flooding_leader_evicts_only_its_own_adverts() -> None:
    waiting: GatheringAdverts[str] = GatheringAdverts(limit=8)
    waiting.remember("b0", B, 100, "b0")  # the honest advert is the oldest
    for i in range(50):
        waiting.remember(f"a{i}", A, 1_000 + i, f"a{i}")
    assert len(waiting) == 8
    got = [waiting.next(0) for _ in range(8)]
    assert "b0" in got
    assert [g for g in got if g != "b0"] == [f"a{i}" for i in range(43, 50)]  # A's newest kept


def test_a_leader_at_its_cap_is_skipped_and_its_adverts_kept() -> None:
    waiting: GatheringAdverts[str] = GatheringAdverts()
    waiting.remember("a0", A, 1_000, "a0")
    waiting.remember("b0", B, 1_000, "b0")
    assert waiting.next(0, skip={A, B}) is None
    assert waiting.next(0, skip={A}) == "b0"
    assert len(waiting) == 1 and waiting.next(0, skip={B}) == "a0"


def test_peak_slots_is_the_larger_group_of_a_session() -> None:
    # balanced split: half the joiners (rounded down) answer, then the rest judge
    assert [peak_slots(n) for n in (2, 3, 4, 5, 24)] == [1, 2, 2, 3, 12]
    assert peak_slots(3, executors=2) == 2  # two answer, one judges
    assert peak_slots(5, executors=1) == 4
    assert peak_slots(5, executors=9) == 4  # at least one verifier remains
    assert peak_slots(1) == 1
