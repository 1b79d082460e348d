"""The bootstrap role: a fixed, well-known peer that tracks who is online and relays the mesh.

It runs no model and takes no session role. It

- is ready as soon as it listens and is subscribed to ``swarm/mesh``;
- relays every topic some peer subscribes to (py-libp2p only forwards topics the node itself is
  subscribed to, so the hub of a star must join them) and leaves a topic when nobody is left;
- publishes its topic -> peers map ("bootmesh") on ``swarm/mesh`` whenever it changes —
  event-driven from subscription and connection changes, debounced by the runtime;
- answers ``/rnet/peers/1.0.0`` with the peers it sees (presence + addresses) and the map.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any, ClassVar

import trio

from node.net.reach import with_seen_at
from node.runtime.peers import PeerRecord
from protocol.identity import peer_id_from_str
from protocol.limits import fit_bootmesh
from protocol.messages import MESH_TOPIC, Bootmesh

if TYPE_CHECKING:
    from node.runtime.node import NodeRuntime

logger = logging.getLogger(__name__)

BOOTMESH_MIN_INTERVAL_S = 1.0


class BootstrapRole:
    is_hub: ClassVar[bool] = True

    def __init__(self, runtime: NodeRuntime) -> None:
        self.rt = runtime
        self._published: dict[str, list[str]] | None = None
        self._relayed: set[str] = set()
        self._last_bootmesh = -math.inf

    async def start(self) -> None:
        self.rt.host.peer_list.serve(self.peer_list)
        self.rt.mark_ready()

    def topics_map(self) -> dict[str, list[str]]:
        """Topic -> subscribed peers, as this bootstrap sees them (itself left out)."""
        me = self.rt.peer_id_str
        view = {}
        for topic, peers in self.rt.host.mesh().items():
            others = [p for p in peers if p != me]
            if others:
                view[topic] = others
        return view

    def peer_list(self, requester: str = "") -> dict[str, Any]:
        """What a provider asks for: the peers (with how long we have known each, and, in a
        closed swarm, their certificates), the topic map, and the requester's certificate."""
        membership = self.rt.membership
        peers = []
        host = self.rt.host
        for p in self.rt.peers():
            # where the peer's connection to us comes from: the address others may need when
            # it sits behind a NAT (its own list has only the addresses it knows of)
            remote_ip = host.peer_addr(p.peer_id).rpartition(":")[0]
            entry = {
                "peer_id": p.peer_id,
                "name": p.name,
                "role": p.role,
                "model": p.model,
                "backend": p.backend,
                "addrs": with_seen_at(p.addrs, p.peer_id, remote_ip),
                "slots": p.slots,
                "slots_used": p.slots_used,
                "capabilities": list(p.capabilities),
                "online_s": round(self.rt.directory.first_seen.online_for(p.peer_id), 1),
            }
            cert = membership.cert_text_for(p.peer_id)
            if cert:
                entry["cert"] = cert
            peers.append(entry)
        reply: dict[str, Any] = {"peers": peers, "topics": self.topics_map()}
        cert = membership.cert_text_for(requester)
        if cert:
            reply["cert"] = cert  # a closed swarm: the requester's own, to present
        return reply

    # -- runtime callbacks -------------------------------------------------------------------

    def on_connection(self, peer: str, what: str) -> None:
        pass

    def on_presence(self, peer: str, record: PeerRecord) -> None:
        pass

    def on_bootmesh(self, topics: dict[str, list[str]]) -> None:
        pass

    def on_subscriptions(self) -> None:
        """A peer (un)subscribed (sync, trio side): relay a new topic at once, not after the
        debounce -- a session's first messages wait for the hub to be on its topics."""
        wanted = self.rt.host.remote_topics() - {MESH_TOPIC}
        for topic in sorted(wanted - self._relayed):
            self._relay(topic)

    def _relay(self, topic: str) -> None:
        self._relayed.add(topic)  # also when refused: asked once, warned once
        try:
            self.rt.relay_topic(topic)
            logger.debug("relaying topic %s", topic)
        except Exception as exc:
            logger.warning("cannot relay topic %r: %s", topic[:80], exc)

    async def on_topology(self) -> None:
        view = self.topics_map()
        await self._drop_relays(view)
        if view == self._published:
            return
        # A session start is a burst of subscriptions spread over more than the debounce; each
        # bootmesh goes to every peer, so publish at most one per interval (the last state wins).
        wait = self._last_bootmesh + BOOTMESH_MIN_INTERVAL_S - time.monotonic()
        if wait > 0:
            await trio.sleep(wait)
            view = self.topics_map()
            if view == self._published:
                return
        self._last_bootmesh = time.monotonic()
        await self._publish_bootmesh(view)

    async def _drop_relays(self, view: dict[str, list[str]]) -> None:
        # new topics are relayed at once (on_subscriptions); here the ones nobody is on any more
        wanted = set(view) - {MESH_TOPIC}
        for topic in sorted(self._relayed - wanted):
            self._relayed.discard(topic)
            try:
                await self.rt.leave_topic(topic)
            except Exception as exc:
                logger.debug("leaving relayed topic %r: %s", topic, exc)

    async def _publish_bootmesh(self, view: dict[str, list[str]]) -> None:
        self._published = view
        # Built to fit: whatever peers subscribed to, the map is cut to what one message holds
        # (the guard already refuses bad names and topic floods; this is the last line).
        topics, left_out = fit_bootmesh(
            {t: tuple(peer_id_from_str(p) for p in ps) for t, ps in view.items()}
        )
        if left_out:
            logger.warning(
                "bootmesh: %d of %d topics left out (too many to send)", left_out, len(view)
            )
        self.rt.set_bootmesh({t: ps for t, ps in view.items() if t in topics})
        try:
            await self.rt.publish_envelope(MESH_TOPIC, Bootmesh(topics=topics))
        except Exception as exc:
            logger.warning("bootmesh not published: %s", exc)
