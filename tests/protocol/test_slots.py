"""protocol.slots: deadline caps, per-leader caps, the slot count."""

from __future__ import annotations

import pytest

from protocol.messages import Advertise
from protocol.slots import SlotPolicy

A, B = b"leader-a", b"leader-b"
SHORT = Advertise(prompt="p", join_ms=10_000, exec_ms=60_000, verify_ms=60_000)
HOUR = Advertise(prompt="p", join_ms=3_600_000, exec_ms=3_600_000, verify_ms=3_600_000)


def test_defaults_take_a_normal_session() -> None:
    assert SlotPolicy().decline(SHORT, A, {}) is None


def test_long_deadlines_are_declined_unless_allowed() -> None:
    assert "--max-session" in (SlotPolicy().decline(HOUR, A, {}) or "")
    assert SlotPolicy(max_session_ms=3 * 3_600_000).decline(HOUR, A, {}) is None


def test_a_leader_gathers_at_most_per_leader_sessions_here() -> None:
    policy = SlotPolicy()
    assert policy.decline(SHORT, A, {A: 3}) is None
    assert "--sessions-per-leader" in (policy.decline(SHORT, A, {A: 4}) or "")
    assert policy.decline(SHORT, B, {A: 4}) is None
    assert "--sessions-per-leader" in (SlotPolicy(per_leader=1).decline(SHORT, A, {A: 1}) or "")
    assert SlotPolicy(per_leader=0).decline(SHORT, A, {A: 3}) is None


def test_all_slots_taken() -> None:
    policy = SlotPolicy(max_sessions=2, per_leader=0)
    assert "--max-sessions" in (policy.decline(SHORT, A, {A: 1, B: 1}) or "")
    assert SlotPolicy(max_sessions=0).decline(SHORT, A, {}) is not None


def test_bad_policy() -> None:
    with pytest.raises(ValueError):
        SlotPolicy(per_leader=-1)
