"""A provider's join policy: deadline cap, one session per leader, a free slot."""

from __future__ import annotations

import pytest

from protocol.admission import JoinPolicy, join_refusal
from protocol.messages import Advertise

QUICK = Advertise(prompt="p", join_ms=1_000, exec_ms=60_000, verify_ms=60_000)
SLOW = Advertise(prompt="p", join_ms=60_000, exec_ms=3_600_000, verify_ms=60_000)


def test_a_quick_session_with_a_free_slot_is_joined() -> None:
    assert join_refusal(QUICK, with_leader=0, free_slots=1) is None


def test_a_session_longer_than_ten_minutes_is_refused_unless_allowed() -> None:
    reason = join_refusal(SLOW, with_leader=0, free_slots=1)
    assert reason is not None and "3720 s" in reason and "600 s" in reason
    assert join_refusal(SLOW, with_leader=0, free_slots=1, policy=JoinPolicy(4_000_000)) is None


def test_sessions_per_leader_still_gathering_are_capped() -> None:
    assert "already in 4" in (join_refusal(QUICK, with_leader=4, free_slots=8) or "")
    assert join_refusal(QUICK, with_leader=3, free_slots=8) is None
    one = JoinPolicy(max_per_leader=1)
    assert "limit 1" in (join_refusal(QUICK, with_leader=1, free_slots=3, policy=one) or "")


def test_no_free_slot_no_join() -> None:
    assert join_refusal(QUICK, with_leader=0, free_slots=0) == "no free model slot"


def test_policy_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        JoinPolicy(max_per_leader=0)
    with pytest.raises(ValueError):
        JoinPolicy(max_session_ms=0)
