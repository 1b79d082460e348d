"""When a provider re-announces its slot use (presence), so the swarm's presences stay bounded.

Theory of operation
-------------------
Slot use (``slots_used`` in presence, protocol.capacity) changes twice or more per session on
every provider that joins it. A presence is a signed broadcast that every node receives, relays
and verifies, so announcing each change costs the swarm O(N) broadcasts per session, each
reaching N nodes: at N = 24 on one machine that was ~48 presences per ``pipe 24`` session, sent
just as the joins were, and a session took 6 s instead of 1 (README, Benchmarks).

Nobody acts on another node's ``slots_used``: a gateway sizes its queue by the slots offered
(``slots``, which a presence carries whenever it goes out), a provider decides on its own slots.
It is shown (console Peers pane, ``--json``), so it may lag by a few seconds. Hence:

- trailing edge: a change goes out :data:`SETTLE_MS` after it happened at the earliest, with the
  use as it is *then*, and only if that differs from what the last presence said: a slot held
  for less than that (a session that was not picked, a quick answer) never costs a broadcast;
- swarm-paced: one node announces its slot use at most every :func:`announce_interval_ms`,
  which grows with the swarm so that all nodes together send about :data:`SWARM_RATE_PER_S`
  slot-use presences per second, whatever N (the way RTCP scales its report interval with the
  group's size, RFC 3550 §6.2).

Any presence (start, a new address or status) carries the current use and counts as announced.
Times are the caller's monotonic milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.capacity import SlotUse

__all__ = ["SETTLE_MS", "SWARM_RATE_PER_S", "SlotPacer", "announce_interval_ms"]

# A change is announced no sooner than this after it happened (and no node more often).
SETTLE_MS = 1_000
# Slot-use presences per second from the whole swarm together (about; see the docstring).
SWARM_RATE_PER_S = 2.0


def announce_interval_ms(nodes: int) -> int:
    """The least time between two slot-use presences of one node in a swarm of ``nodes``."""
    return max(SETTLE_MS, int(max(1, nodes) * 1000 / SWARM_RATE_PER_S))


@dataclass(slots=True)
class SlotPacer:
    """What this node last announced of its slots, and when the next change may go out.

    ``use`` is what the last presence carried (None: no presence sent yet)."""

    use: SlotUse | None = None
    at_ms: int | None = None

    def sent(self, use: SlotUse, now_ms: int) -> None:
        """A presence carrying ``use`` went out now (for whatever reason)."""
        self.use, self.at_ms = use, now_ms

    def due_ms(self, changed_ms: int, nodes: int) -> int:
        """When a change first noticed at ``changed_ms`` may be announced (trailing edge)."""
        due = changed_ms + SETTLE_MS
        if self.at_ms is not None:
            due = max(due, self.at_ms + announce_interval_ms(nodes))
        return due

    def worth_sending(self, use: SlotUse) -> bool:
        """Whether the slots now differ from what the last presence said."""
        return use != self.use
