"""Who this node is and how long it has known each peer: its own presence (what it announces),
and first-seen times for the bootstrap's peer list (``online_s``) and the leader's newcomer rule
(``protocol.newcomers``, which reads :attr:`FirstSeen.ms` live)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from protocol.errors import ProtocolError
from protocol.identity import peer_id_from_str
from protocol.messages import Presence

if TYPE_CHECKING:
    from node.runtime.node import NodeRuntime

MAX_FIRST_SEEN = 100_000  # peers remembered (the oldest forgotten first)


class FirstSeen:
    def __init__(self) -> None:
        # peer ID bytes -> epoch ms first seen, by this node or (earlier) by its bootstrap
        self.ms: dict[bytes, int] = {}
        self._mono: dict[str, float] = {}  # by this node, this run (monotonic)

    def note(self, peer: str, seconds: float = 0.0) -> None:
        """``peer`` has been around for at least ``seconds`` (the earliest claim wins)."""
        self._mono.setdefault(peer, time.monotonic())
        try:
            key = peer_id_from_str(peer)
        except ProtocolError:
            return
        when = time.time_ns() // 1_000_000 - int(max(0.0, seconds) * 1000)
        if when < self.ms.get(key, when + 1):
            self.ms[key] = when
        if len(self.ms) > MAX_FIRST_SEEN:
            for old in sorted(self.ms, key=self.ms.__getitem__)[:1000]:
                del self.ms[old]
        if len(self._mono) > MAX_FIRST_SEEN:
            self._mono.pop(next(iter(self._mono)))

    def online_for(self, peer: str) -> float:
        """Seconds since this node first saw ``peer`` (this run)."""
        since = self._mono.get(peer)
        return 0.0 if since is None else max(0.0, time.monotonic() - since)


def own_presence(rt: NodeRuntime) -> Presence:
    """What this node announces on ``swarm/mesh``."""
    return Presence(
        name=rt.config.name[:128],
        role=rt.role,
        model=rt.model[:128],
        backend=rt.backend[:128],
        addrs=tuple(rt.host.addrs()[:16]),
        status=rt.status[:128],
        slots=rt.slot_use.total,
        slots_used=min(rt.slot_use.used, rt.slot_use.total),
        capabilities=tuple(rt.capabilities)[:8],
        cert=rt.membership.own_cert,  # closed swarms: what makes us a member
    )
