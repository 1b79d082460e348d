"""Whether a provider joins an advertised session (issue 13 point 4, the pure part).

A provider takes part only in sessions it can serve and that a single leader cannot use to
monopolise it: the advertised deadlines must fit in ``max_session_ms`` end to end (join + execute
+ verify; 10 minutes unless the operator allows more), it is in at most ``max_per_leader``
sessions of one leader that are still gathering joins (where a slot sits idle: a leader cannot
park this node's slots in sessions that never start; sessions already running do not count, so
a gateway may run many at once), and it needs a free model slot. The node asks
:func:`advert_refusal` for each ``advertise`` it sees: a refused advert is dropped (it never
fits); the others are remembered (:mod:`protocol.capacity`) and joined when a model slot is
free and their leader is not among :func:`leaders_at_cap`: a leader at its cap, or no free slot,
only means "not now".

``max_per_leader`` defaults to 4, not 1: with 1, concurrent sessions of one leader deadlock
when providers see their advertisements in different orders (each joins a different one, none
fills up) until the leader queues instead of advertising them all at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from protocol.messages import Advertise

__all__ = [
    "DEFAULT_MAX_PER_LEADER",
    "DEFAULT_MAX_SESSION_MS",
    "JoinPolicy",
    "advert_refusal",
    "lacking_capabilities",
    "leaders_at_cap",
    "session_ms",
]

DEFAULT_MAX_SESSION_MS = 10 * 60_000
DEFAULT_MAX_PER_LEADER = 4  # sessions of one leader still gathering joins (see above)


@dataclass(frozen=True, slots=True)
class JoinPolicy:
    """A provider's limits on the sessions it joins."""

    max_session_ms: int = DEFAULT_MAX_SESSION_MS
    max_per_leader: int = DEFAULT_MAX_PER_LEADER

    def __post_init__(self) -> None:
        if self.max_session_ms < 1:
            raise ValueError("max_session_ms must be >= 1")
        if self.max_per_leader < 1:
            raise ValueError("max_per_leader must be >= 1")


def lacking_capabilities(advert: Advertise, capabilities: tuple[str, ...]) -> str:
    """What ``advert`` needs that a model with ``capabilities`` cannot do ("" if none)."""
    needs = [c for c, wanted in (("tools", advert.tools), ("json", advert.format)) if wanted]
    return ", ".join(c for c in needs if c not in capabilities)


def session_ms(advert: Advertise) -> int:
    """How long the advertised session may last end to end (join + execute + verify)."""
    return advert.join_ms + advert.exec_ms + advert.verify_ms


def advert_refusal(advert: Advertise, policy: JoinPolicy = JoinPolicy()) -> str | None:
    """Why this node never joins ``advert`` (fit for a log line), or ``None``: its deadlines
    add up to more than the policy accepts."""
    total = session_ms(advert)
    if total > policy.max_session_ms:
        return (
            f"the session may last {total / 1000:.0f} s end to end, more than the "
            f"{policy.max_session_ms / 1000:.0f} s this node accepts (--max-session)"
        )
    return None


def leaders_at_cap(gathering: Mapping[bytes, int], policy: JoinPolicy = JoinPolicy()) -> set[bytes]:
    """Leaders whose adverts wait for now: this node is already in ``max_per_leader`` of their
    sessions still gathering joins (``gathering``: leader -> such sessions here)."""
    return {leader for leader, n in gathering.items() if n >= policy.max_per_leader}
