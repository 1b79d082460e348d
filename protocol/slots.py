"""Which advertisements a provider joins at all (issue 13, point 4).

Model slots (protocol.capacity) are held only while a session may still need this node's model,
but every session joined is also state kept until it ends, and ``max_sessions`` of them at once
is the bound: without limits a few adverts with one-hour deadlines from one peer would tie up
that bound on every provider for an hour. So, before it even queues an advertisement, a
provider declines it when

- its deadlines add up to more than ``max_session_ms`` end to end (join + execute + verify;
  default 10 minutes: a longer session must be allowed explicitly), or
- its leader already has ``per_leader`` sessions here that are still gathering (joined, no
  assignment yet: what a flood piles up; an assigned session no longer counts), or
- ``max_sessions`` sessions are gathering here already.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from protocol.messages import Advertise

__all__ = ["DEFAULT_MAX_SESSION_MS", "DEFAULT_PER_LEADER", "SlotPolicy"]

DEFAULT_MAX_SESSION_MS = 600_000
# A gateway leads a few sessions at once and each gathers for about a second: 4 lets its bursts
# through, while one flooding identity holds at most 4 of a provider's 16 sessions.
DEFAULT_PER_LEADER = 4


@dataclass(frozen=True, slots=True)
class SlotPolicy:
    max_sessions: int = 16
    per_leader: int = DEFAULT_PER_LEADER  # 0: no per-leader cap
    max_session_ms: int = DEFAULT_MAX_SESSION_MS

    def __post_init__(self) -> None:
        if self.max_sessions < 0 or self.per_leader < 0 or self.max_session_ms < 1:
            raise ValueError("max_sessions and per_leader must be >= 0, max_session_ms >= 1")

    def decline(self, advertise: Advertise, leader: bytes, held: Mapping[bytes, int]) -> str | None:
        """Why this provider does not join (a short reason), or None to take a slot.

        ``held``: leader -> its sessions still gathering here now."""
        total_ms = advertise.join_ms + advertise.exec_ms + advertise.verify_ms
        if total_ms > self.max_session_ms:
            return (
                f"deadlines add up to {total_ms / 1000:g} s, more than the "
                f"{self.max_session_ms / 1000:g} s this node accepts (--max-session)"
            )
        if self.per_leader and held.get(leader, 0) >= self.per_leader:
            return f"its leader already has {held[leader]} session(s) gathering here (--sessions-per-leader)"
        if sum(held.values()) >= self.max_sessions:
            return f"already {sum(held.values())} sessions gathering here (--max-sessions)"
        return None
