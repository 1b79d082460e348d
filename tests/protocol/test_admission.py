"""A provider's join policy: the deadline cap, sessions of one leader still gathering."""

from __future__ import annotations

import pytest

from protocol.admission import JoinPolicy, advert_refusal, leaders_at_cap
from protocol.messages import Advertise

QUICK = Advertise(prompt="p", join_ms=1_000, exec_ms=60_000, verify_ms=60_000)
SLOW = Advertise(prompt="p", join_ms=60_000, exec_ms=3_600_000, verify_ms=60_000)


def test_a_quick_session_is_acceptable() -> None:
    assert advert_refusal(QUICK) is None


def test_a_session_longer_than_ten_minutes_is_refused_unless_allowed() -> None:
    reason = advert_refusal(SLOW)
    assert reason is not None and "3720 s" in reason and "600 s" in reason
    assert "--max-session" in reason
    assert advert_refusal(SLOW, JoinPolicy(4_000_000)) is None


def test_a_leader_with_max_per_leader_sessions_gathering_waits() -> None:
    a, b = b"leader-a", b"leader-b"
    assert leaders_at_cap({a: 4, b: 3}) == {a}  # default 4
    assert leaders_at_cap({a: 1, b: 0}, JoinPolicy(max_per_leader=1)) == {a}
    assert leaders_at_cap({}) == set()


def test_policy_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        JoinPolicy(max_per_leader=0)
    with pytest.raises(ValueError):
        JoinPolicy(max_session_ms=0)
