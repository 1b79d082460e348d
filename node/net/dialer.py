"""Direct links to peers at the addresses they announced (trio side).

A provider learns peers' addresses from their presence and the bootstrap's peer list, and dials
a few of them so the swarm survives the bootstrap going away. :class:`DirectDialer` tries one
peer's addresses one at a time in the order :mod:`node.net.reach` gives (the one that worked
before first, the same subnet next, loopback of another host last), remembers which worked, and
takes every attempt from a shared token bucket: however many addresses peers hand out, a node
dials at a bounded rate and only ever the identity the address names. (Imports no libp2p: the
host it is given does.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import trio

from node.errors import HostError
from node.net.reach import DialBudget, DialMemory
from protocol.addresses import peer_addrs

if TYPE_CHECKING:
    from node.net.host import SwarmHost

logger = logging.getLogger(__name__)

DIAL_TIMEOUT_S = 3.0  # per address: a blackholed address must not hold the others up long


class DirectDialer:
    def __init__(
        self,
        host: SwarmHost,
        *,
        budget: DialBudget | None = None,
        memory: DialMemory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.budget = budget or DialBudget()
        self.memory = memory or DialMemory()
        self._clock = clock

    async def dial(self, peer: str, addrs: Sequence[str]) -> str | None:
        """Connect to ``peer`` at the first of ``addrs`` that answers; returns that address
        (None when none did). Addresses not naming ``peer`` are never dialed."""
        if not self.memory.may_dial(peer, self._clock()):
            return None  # nothing of it answered a moment ago
        candidates, _ = peer_addrs(addrs, peer)
        order = self.memory.order(peer, candidates, self.host.announcer.interfaces(), self._clock())
        failures = []
        for addr in order:
            if self.host.is_connected(peer):
                return None  # it dialed us meanwhile
            wait = self.budget.wait_s(self._clock())
            if wait > 0:
                await trio.sleep(wait)
            try:
                await self.host.connect(addr.text(), timeout=DIAL_TIMEOUT_S)
            except HostError as exc:
                self.memory.failed(peer, addr, self._clock())
                failures.append(f"{addr.ip}:{addr.port}")
                logger.debug("direct dial %s failed: %s", addr.text(), exc)
                continue
            self.memory.worked(peer, addr)
            logger.info("direct link to %s at %s:%d", peer[-6:], addr.ip, addr.port)
            return addr.text()
        if order:
            backoff = self.memory.unreachable(peer, self._clock())
            logger.info(
                "no address of peer %s answered (tried %s); next try in %.0f s at the earliest",
                peer[-6:],
                ", ".join(failures),
                backoff,
            )
        return None
