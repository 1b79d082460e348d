"""py-libp2p's pubsub, adapted (trio side): deep queues, hub-first routing, silent relays.

The one place that subclasses py-libp2p's ``Pubsub``/``FloodSub`` and reaches into their private
hooks (``_handle_dead_peer``, ``_is_subscribed_to_msg``, ``_get_peers_to_send``,
``_enqueue_or_retry_announce``, ``_peer_is_connected``, the module's ``RpcQueue``): py-libp2p
0.8.1 has no public API for any of it. ``tests/node/test_libp2p_adapter.py`` fails if one of
those names changes underneath (the version is pinned exactly in pyproject.toml). Its base,
``node.net.guarded.GuardedPubsub``, holds the guard's hooks (``push_msg``,
``handle_subscription``, ``continuously_read_stream``), pinned by the same test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from libp2p.peer.id import ID
from libp2p.pubsub import pubsub as _pubsub_module
from libp2p.pubsub.floodsub import PROTOCOL_ID as FLOODSUB_PROTOCOL_ID
from libp2p.pubsub.floodsub import FloodSub
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.rpc_queue import RpcQueue

from node.net.guarded import GuardedPubsub

# Deep queues (pitfall 3/13): a hub relaying a session burst must not drop at 32.
PEER_QUEUE_SIZE = 8192
SUBSCRIPTION_QUEUE_SIZE = 8192


class DeepRpcQueue(RpcQueue):
    def __init__(self, max_size: int = PEER_QUEUE_SIZE, **kwargs: Any) -> None:
        super().__init__(max_size=max_size, **kwargs)


def quiet_yamux_window_updates() -> None:
    # py-libp2p 0.8.1's yamux answers every read with a WINDOW_UPDATE frame unless
    # PY_YAMUX_RELEASE_ON_READ is off (read at call time): for small pubsub RPCs that is one
    # extra frame -- an encrypt, a send and a wake-up of the peer -- per message in each
    # direction. Off, credit is returned go-yamux style once half the 256 KiB window is used.
    # Measured (bench.session, N=12): ~40% less CPU per session. An operator's own setting wins.
    os.environ.setdefault("PY_YAMUX_RELEASE_ON_READ", "0")


def deepen_pubsub_queues() -> None:
    # Pubsub reads both names at call time from its module: one process runs one node, so this
    # module-level change is the node's configuration, not a hidden global for others.
    _pubsub_module.RpcQueue = DeepRpcQueue  # type: ignore[misc]
    _pubsub_module.SUBSCRIPTION_CHANNEL_SIZE = SUBSCRIPTION_QUEUE_SIZE


class ObservedPubsub(GuardedPubsub):
    """Pubsub that reports subscription changes (for the bootstrap's event-driven mesh map),
    relays topics silently (the hub) and announces subscriptions to the hub only while a leaf
    is connected to it (see :class:`HubFirstFloodSub`)."""

    on_topology_change: Callable[[], None] = staticmethod(lambda: None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hub_id: ID | None = None  # leaves (floodsub): the bootstrap they route through
        self._relays: set[str] = set()

    def handle_subscription(self, origin_id: ID, sub_message: rpc_pb2.RPC.SubOpts) -> None:
        super().handle_subscription(origin_id, sub_message)
        self.on_topology_change()

    def _handle_dead_peer(self, peer_id: ID) -> None:
        super()._handle_dead_peer(peer_id)
        self.on_topology_change()

    # -- the hub: forward a topic without subscribing to it -------------------------------------

    def relay(self, topic: str) -> bool:
        """Forward ``topic`` from now on, without a subscription or an announcement.

        py-libp2p accepts (and so forwards) only messages on topics the node subscribed to, and
        a subscription is announced to every peer: for the hub that is one RPC to each peer per
        session topic, twice (join and leave). Leaves send everything to the hub anyway, so the
        hub needs to accept the topic, nothing more. Synchronous: called while the subscription
        that asked for it is being read, so the messages behind it on that stream are forwarded.
        """
        if topic in self._relays:
            return False
        self._relays.add(topic)
        return True

    def relayed_topics(self) -> list[str]:
        return sorted(self._relays)

    def unrelay(self, topic: str) -> bool:
        if topic not in self._relays:
            return False
        self._relays.discard(topic)
        return True

    def _is_subscribed_to_msg(self, msg: rpc_pb2.Message) -> bool:
        return super()._is_subscribed_to_msg(msg) or any(t in self._relays for t in msg.topicIDs)

    # -- leaves: subscriptions go to the hub only while it is there -----------------------------

    def hub_connected(self) -> bool:
        hub = self.hub_id
        return (
            hub is not None
            and hub in self.peers
            and hub in self.peer_queues
            # pubsub forgets a dead peer a moment after its connection closed: in between, a
            # message routed to the hub would be lost (measured: the first publish after the
            # hub died vanished), so ask the connection itself
            and self._peer_is_connected(hub)
        )

    async def message_all_peers(
        self, raw_msg: bytes, announce: rpc_pb2.RPC.SubOpts | None = None
    ) -> None:
        # Only subscription announcements come through here. While we route through the hub,
        # direct peers do not need them (they learn our topics in the stream's hello, and again
        # when the hub is lost: ProviderRole re-announces), and each costs them a read.
        if not self.hub_connected():
            await super().message_all_peers(raw_msg, announce)
            return
        hub = self.hub_id
        assert hub is not None
        rpc_msg = rpc_pb2.RPC()
        rpc_msg.ParseFromString(raw_msg)
        self._enqueue_or_retry_announce(hub, self.peer_queues[hub], rpc_msg, announce)


class HubFirstFloodSub(FloodSub):
    """Floodsub that sends through the hub while the hub is there (ARCHITECTURE §10 item 14).

    Providers also hold a few direct links so the swarm survives the bootstrap going away. Plain
    floodsub floods every link: with two dials per provider every message crosses each node
    three to five times, and the duplicates cost the same CPU as the first copy. So, while this
    node is connected to the hub:

    - a message we publish goes to the hub only (it forwards to everyone else on the topic; it
      relays every topic any peer subscribed to, see ``ObservedPubsub.relay``);
    - a message the hub forwarded to us is not forwarded again (the hub already sent it to every
      peer it has);
    - a message that reached us over a direct link (its origin lost the hub and flooded) goes on
      to the hub, so the rest of the swarm still gets it.

    Without the hub (down or not yet reached) this is plain floodsub over whatever links there
    are. The hub itself (``hub_id`` None) is plain floodsub.
    """

    def _get_peers_to_send(
        self, topic_ids: Iterable[str], msg_forwarder: ID, origin: ID
    ) -> Iterable[ID]:
        pubsub = self.pubsub
        if not isinstance(pubsub, ObservedPubsub) or not pubsub.hub_connected():
            return super()._get_peers_to_send(topic_ids, msg_forwarder, origin)
        hub = pubsub.hub_id
        if hub in (msg_forwarder, origin):
            return []  # the hub already sent it to every peer it has
        return [hub]


def topics_of(pubsub: Pubsub, peer: str) -> list[str]:
    """The topics ``peer`` (base58) told us it is subscribed to."""
    return sorted(
        t for t, ps in pubsub.peer_topics.items() if any(p.to_base58() == peer for p in ps)
    )


def make_router(router: str) -> FloodSub | GossipSub:
    """The pubsub router: hub-first floodsub (default) or gossipsub for larger swarms."""
    if router == "gossipsub":
        # pitfall 10: default heartbeat is 120 s and spam protection drops >10 msg/s
        return GossipSub(
            protocols=[PROTOCOL_ID_V11, FLOODSUB_PROTOCOL_ID],
            degree=6,
            degree_low=4,
            degree_high=12,
            heartbeat_interval=1,
            spam_protection_enabled=False,
            max_messages_per_topic_per_second=1e9,
        )
    return HubFirstFloodSub(protocols=[FLOODSUB_PROTOCOL_ID])
