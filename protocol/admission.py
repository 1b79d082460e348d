"""Whether a provider joins an advertised session (issue 13 point 4, the pure part).

A provider takes part only in sessions it can serve and that a single leader cannot use to
monopolise it: the advertised deadlines must fit in ``max_session_ms`` end to end (join + execute
+ verify; 10 minutes unless the operator allows more), it is in at most ``max_per_leader``
sessions of one leader that are still gathering joins (where a slot sits idle: a leader cannot
park this node's slots in sessions that never start; sessions already running do not count, so
a gateway may run many at once), and it needs a free model slot. The node asks
:func:`join_refusal` for each ``advertise`` it sees and joins when the answer is ``None``.

``max_per_leader`` defaults to 4, not 1: with 1, concurrent sessions of one leader deadlock
when providers see their advertisements in different orders (each joins a different one, none
fills up) until the leader queues instead of advertising them all at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.messages import Advertise

__all__ = [
    "DEFAULT_MAX_PER_LEADER",
    "DEFAULT_MAX_SESSION_MS",
    "JoinPolicy",
    "join_refusal",
    "lacking_capabilities",
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


def join_refusal(
    advert: Advertise,
    *,
    with_leader: int,
    free_slots: int,
    policy: JoinPolicy = JoinPolicy(),
) -> str | None:
    """``None`` to join; otherwise the reason not to, fit for a log line.

    ``with_leader``: sessions of this advert's leader this node is in that are still gathering
    joins; ``free_slots``: model slots not held by any session.
    """
    total = session_ms(advert)
    if total > policy.max_session_ms:
        return (
            f"the session may last {total / 1000:.0f} s end to end, more than the "
            f"{policy.max_session_ms / 1000:.0f} s this node accepts"
        )
    if with_leader >= policy.max_per_leader:
        return f"already in {with_leader} session(s) of this leader (limit {policy.max_per_leader})"
    if free_slots <= 0:
        return "no free model slot"
    return None
