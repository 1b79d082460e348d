"""protocol/capacity.py: when a session holds a model slot, and which advert gets a freed slot."""

from __future__ import annotations

import pytest

from protocol.capacity import MAX_REMEMBERED, GatheringAdverts, SlotUse, holds_slot
from protocol.effects import Role, Stage

A, B, C = b"leader-a", b"leader-b", b"leader-c"


def _holds(stage: Stage, role: Role, *, generated=False, judging=0, finished=False) -> bool:
    return holds_slot(
        finished=finished, stage=stage, role=role, generated=generated, judging=judging
    )


def test_a_slot_is_held_only_while_this_node_may_answer_or_judge() -> None:
    assert _holds(Stage.ADVERTISE, Role.PENDING)  # may be picked
    assert _holds(Stage.EXECUTE, Role.EXECUTOR)  # answering
    assert not _holds(Stage.EXECUTE, Role.EXECUTOR, generated=True)  # answered: free
    assert _holds(Stage.EXECUTE, Role.VERIFIER)  # answers still to come
    assert _holds(Stage.VERIFY, Role.VERIFIER, judging=2)  # judging
    assert not _holds(Stage.VERIFY, Role.VERIFIER)  # judged everything: free
    assert not _holds(Stage.EXECUTE, Role.OBSERVER)  # not picked: free at once
    assert not _holds(Stage.ABORTED, Role.PENDING, finished=True)
    assert not _holds(Stage.EXECUTE, Role.EXECUTOR, finished=True)


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
