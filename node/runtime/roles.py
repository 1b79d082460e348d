"""What a node's role plugs into the runtime: the bootstrap (hub) and the provider (leaf).

The runtime calls these from trio, synchronously for the ``on_*`` notifications (they must not
block: start a task in ``runtime.nursery`` for anything slow).
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from node.runtime.peers import PeerRecord


class Role(Protocol):
    # The hub forwards every topic for everyone and takes no part in sessions: it ignores
    # bootmesh announcements, shows no traffic as messages and never waits for a route.
    is_hub: ClassVar[bool]

    async def start(self) -> None:
        """The host listens and is on ``swarm/mesh``: join the swarm (and ``mark_ready``)."""

    def on_connection(self, peer: str, what: str) -> None:
        """``peer`` got ``connected`` or ``disconnected``."""

    def on_presence(self, peer: str, record: PeerRecord) -> None:
        """``peer`` announced (or changed) its presence."""

    def on_bootmesh(self, topics: dict[str, list[str]]) -> None:
        """The bootstrap's topic -> peers map changed."""

    def on_subscriptions(self) -> None:
        """A peer (un)subscribed a topic (at once, before the debounce)."""

    async def on_topology(self) -> None:
        """Subscriptions or connections changed (debounced)."""
