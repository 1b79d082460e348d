"""The libp2p host and pubsub of one node (trio side). The only module importing libp2p's network.

``SwarmHost`` wraps a py-libp2p 0.8.1 host (TCP + Noise + Yamux), a pubsub router (floodsub by
default), the ping protocol and a small request/response protocol, and works around the measured
pitfalls of that release (ARCHITECTURE §10):

1. the Pubsub service is started before ``host.run()``;
2. ``host.close()`` is awaited (shielded) on the way out — leaving ``host.run()`` leaves dialed
   sockets open;
3. outbound per-peer RPC queues and subscription channels hold 32 and drop: both are deepened,
   every subscription is drained by its own task into an unbounded buffer, and ``publish`` waits
   while any peer queue is above a high-water mark (backpressure on bursts);
4. a node receives its own publishes: they are filtered on ``from_id``;
5. the pubsub seqno counter starts at ``time.time_ns()`` so a restarted peer's messages are not
   dropped as already seen;
6. ``connect`` unblocks the peer in the dial-backoff cache before dialing (the reconnect loop
   lives in the runtime);
7./12. ``ConnectionConfig(max_connections_per_peer=1)`` so a successful dial returns at once;
   liveness is checked with ping (``ping_once``) by the runtime's heartbeat;
9. listening on 0.0.0.0 announces concrete addresses (every interface's, observed ones and
   ``--announce``: :mod:`node.net.announcer`), never 0.0.0.0;
10. gossipsub (optional) gets a 1 s heartbeat and no per-topic rate limit;
11. the seen-messages cache's sweeper thread is stopped on close;
13./14. a star, and only a star while the hub is there: leaves send every message and every
   subscription announcement to the hub alone (``HubFirstFloodSub``, ``ObservedPubsub``), the
   hub relays topics without subscribing (``relay``), and the leaves' direct links carry
   traffic (plain floodsub) only when the hub is gone;
15. yamux returns window credit in batches, not with one WINDOW_UPDATE frame per read.

Callbacks into the runtime are plain synchronous functions called in trio; they must not block.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import INetConn
from libp2p.crypto.keys import KeyPair
from libp2p.host.ping import ID as PING_PROTOCOL_ID
from libp2p.host.ping import perform_ping_roundtrip
from libp2p.network.config import ConnectionConfig, RetryConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.tools.anyio_service import background_trio_service

from node.errors import DialError, HostError, PeerIdMismatch
from node.net.addrs import parse_p2p_maddr, parse_peer_id
from node.net.announcer import Announcer
from node.net.guard import NetworkGuard
from node.net.guarded import ConnectionGate
from node.net.links import (
    Notifee,
    PubsubMessage,
    TopicHandler,
    brief_error,
    dial_failure,
    mismatched_peer_id,
    quiet,
)
from node.net.peerlist import PeerListProtocol
from node.net.pubsub import (
    PEER_QUEUE_SIZE,
    HubFirstFloodSub,
    ObservedPubsub,
    deepen_pubsub_queues,
    make_router,
    quiet_yamux_window_updates,
    topics_of,
)

logger = logging.getLogger(__name__)

# publish() waits while a peer's outbound queue holds more than this.
PUBLISH_HIGH_WATER = PEER_QUEUE_SIZE // 2
CLOSE_TIMEOUT_S = 2.0
MAX_TOPICS_PER_PEER = 4096


class SwarmHost:
    """A libp2p host + pubsub for one node. Create, then ``await nursery.start(host.run)``."""

    def __init__(
        self,
        keypair: KeyPair,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        announce: tuple[str, ...] = (),
        router: str = "floodsub",
        on_peer_change: Callable[[str, str], None] | None = None,
        on_topology_change: Callable[[], None] | None = None,
        guard: NetworkGuard | None = None,
    ) -> None:
        deepen_pubsub_queues()
        quiet_yamux_window_updates()
        self._listen_host = listen_host
        self._listen_port = listen_port
        self.announcer = Announcer(listen_host, announce)
        self._on_peer_change = on_peer_change or (lambda peer, what: None)
        connection_config = ConnectionConfig(
            # pitfall 12: one connection per peer lets a successful dial return at once
            max_connections_per_peer=1,
            # our own dial/reconnect loops decide whom to dial, not the auto-connector
            min_connections=0,
            low_watermark=0,
            dial_timeout=5.0,
        )
        self.host = new_host(
            key_pair=keypair,
            listen_addrs=[self._listen_maddr()],
            connection_config=connection_config,
            # pitfall 9: what identify tells peers must be dialable, never 0.0.0.0
            addrs_factory=self.announcer.factory,
        )
        self.announcer.host = self.host
        # each failed dial would be retried 3 times inside libp2p (0.1-0.4 s apart): our own
        # loops decide when to retry, and a peer's bad address must cost one attempt, not four
        self.host.get_network().retry_config = RetryConfig(max_retries=0)
        self.peer_id: ID = self.host.get_id()
        self.peer_id_str: str = self.peer_id.to_base58()
        pubsub_router = make_router(router)
        self.pubsub = ObservedPubsub(
            self.host,
            pubsub_router,
            strict_signing=True,
            # every session is a topic: the hub must accept more than libp2p's default 100
            # subscriptions per peer, or it silently stops relaying a busy node's sessions
            max_subscriptions_per_peer=MAX_TOPICS_PER_PEER,
        )
        # pitfall 5: a restarted peer must not reuse seqnos its old self already used
        self.pubsub.counter = time.time_ns()
        self.gate = guard and ConnectionGate(
            guard, self.pubsub, self.disconnect, lambda: self._nursery
        )
        if on_topology_change is not None:
            self.pubsub.on_topology_change = on_topology_change
        self.host.get_network().register_notifee(Notifee(self._peer_changed))
        self.peer_list = PeerListProtocol(self.host)
        self._topics: dict[str, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None
        self._stop = trio.Event()
        self._publish_lock = trio.Lock()
        self._seen_cache_stopped = False

    # -- lifecycle ---------------------------------------------------------------------------

    def _listen_maddr(self) -> multiaddr.Multiaddr:
        return multiaddr.Multiaddr(f"/ip4/{self._listen_host}/tcp/{self._listen_port}")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until ``close()``; reports started once listening (for ``nursery.start``)."""
        try:
            # pitfall 1: pubsub must be running before host.run() accepts inbound streams
            async with background_trio_service(self.pubsub):
                try:
                    async with self.host.run([self._listen_maddr()]):
                        await self.pubsub.wait_until_ready()
                        async with trio.open_nursery() as nursery:
                            self._nursery = nursery
                            task_status.started()
                            await self._stop.wait()
                            nursery.cancel_scope.cancel()
                finally:
                    # pitfall 2: leaving host.run() does not close dialed sockets
                    with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S):
                        await self.host.close()
        finally:
            self._stop_seen_cache()

    async def close(self) -> None:
        """Ask ``run`` to close the host and return; safe to call more than once."""
        self._stop.set()

    def _stop_seen_cache(self) -> None:
        # pitfall 11: the seen-messages cache runs a sweeper thread nobody else stops
        if not self._seen_cache_stopped:
            self._seen_cache_stopped = True
            try:
                self.pubsub.seen_messages.stop()
            except Exception:  # best effort on the way out
                logger.debug("stopping the seen-messages cache failed", exc_info=True)

    @property
    def nursery(self) -> trio.Nursery:
        if self._nursery is None:
            raise HostError("host is not running")
        return self._nursery

    # -- addresses and peers -----------------------------------------------------------------

    def addrs(self) -> list[str]:
        """Our dialable multiaddrs including ``/p2p/<id>`` (never a wildcard, pitfall 9)."""
        return [f"{addr}/p2p/{self.peer_id_str}" for addr in self.announcer.announced()]

    def connected_peers(self) -> list[str]:
        return sorted(p.to_base58() for p in self.host.get_connected_peers())

    def set_hub(self, peer: str | None) -> None:
        """Route through ``peer`` (the bootstrap) while connected to it (see HubFirstFloodSub)."""
        if isinstance(self.pubsub.router, HubFirstFloodSub):
            self.pubsub.hub_id = parse_peer_id(peer) if peer else None

    def hub_connected(self) -> bool:
        """True while this leaf routes through its hub (then every publish goes to the hub)."""
        return self.pubsub.hub_connected()

    def relay(self, topic: str) -> bool:
        """Hub: forward ``topic`` without subscribing (sync; see ``ObservedPubsub.relay``).

        Only floodsub leaves route everything through the hub; gossipsub builds its mesh from
        announced subscriptions, so there the hub subscribes for real (in a task)."""
        if isinstance(self.pubsub.router, HubFirstFloodSub):
            return self.pubsub.relay(topic)
        if topic in self._topics or self._nursery is None:
            return False

        async def ignore(msg: PubsubMessage) -> None:
            pass

        self._nursery.start_soon(self.subscribe, topic, ignore)
        return True

    def unrelay(self, topic: str) -> bool:
        if isinstance(self.pubsub.router, HubFirstFloodSub):
            return self.pubsub.unrelay(topic)
        if topic not in self._topics or self._nursery is None:
            return False
        self._nursery.start_soon(self.unsubscribe, topic)
        return True

    def relayed_topics(self) -> list[str]:
        if isinstance(self.pubsub.router, HubFirstFloodSub):
            return self.pubsub.relayed_topics()
        return self.subscribed_topics()

    def is_connected(self, peer: str | ID) -> bool:
        pid = parse_peer_id(peer) if isinstance(peer, str) else peer
        conns = self.host.get_network().connections.get(pid)
        return bool(conns)

    def peer_addr(self, peer: str) -> str:
        """The remote address of our connection to ``peer`` ('' if unknown)."""
        try:
            conns = self.host.get_network().connections.get(parse_peer_id(peer)) or []
            for conn in conns:
                remote = conn.muxed_conn.secured_conn.get_remote_address()
                if remote:
                    return f"{remote[0]}:{remote[1]}"
        except Exception:  # best-effort cosmetic field
            pass
        return ""

    def _peer_changed(self, peer: ID, what: str, conn: INetConn | None = None) -> None:
        if self.gate is None or self.gate.admit(peer, what, conn):
            self._on_peer_change(peer.to_base58(), what)

    async def connect(self, maddr: str, *, timeout: float = 5.0) -> str:
        """Dial a ``/p2p/`` multiaddr; returns the peer id. HostError on failure."""
        peer_id, addrs = parse_p2p_maddr(maddr)
        if peer_id == self.peer_id:
            raise HostError("that is this node's own address")
        # pitfall 6: a failed dial blocks the peer for 60 s; we decide when to retry
        self.host.get_network().unblock_peer(peer_id)
        # libp2p dials the first TCP address its peerstore holds for the peer (one per transport,
        # swarm.dial_peer), which may be an older one (identify adds whatever the peer
        # announces): forget them, so this dial goes to ``maddr`` and only there.
        if not self.is_connected(peer_id):
            self.host.get_peerstore().clear_addrs(peer_id)
        try:
            with trio.fail_after(timeout):
                await self.host.connect(PeerInfo(peer_id, addrs))
        except trio.TooSlowError as exc:
            raise DialError(maddr, f"timed out after {timeout:.0f} s") from exc
        except Exception as exc:
            actual = mismatched_peer_id(exc)
            if actual is not None:
                raise PeerIdMismatch(maddr, peer_id.to_base58(), actual) from exc
            raise DialError(maddr, dial_failure(exc)) from exc
        return peer_id.to_base58()

    async def disconnect(self, peer: str) -> None:
        try:
            await self.host.disconnect(parse_peer_id(peer))
        except HostError:
            raise
        except Exception as exc:
            logger.debug("disconnect %s: %s", peer, exc)

    async def ping_once(self, peer: str, *, timeout: float = 2.0) -> float:
        """One ping round trip to a connected peer, in ms. HostError on failure/timeout."""
        pid = parse_peer_id(peer)
        stream = None
        try:
            with trio.fail_after(timeout):
                stream = await self.host.new_stream(pid, [PING_PROTOCOL_ID])
                start = time.perf_counter()
                await perform_ping_roundtrip(stream)
                rtt = (time.perf_counter() - start) * 1000.0
        except trio.TooSlowError as exc:
            if stream is not None:
                with trio.move_on_after(0.5):
                    await quiet(stream.reset())
            raise HostError(f"ping {peer[-6:]} timed out after {timeout:.1f} s") from exc
        except Exception as exc:
            raise HostError(f"ping {peer[-6:]} failed: {brief_error(exc)}") from exc
        with trio.move_on_after(0.5):
            await quiet(stream.close())
        return rtt

    # -- pubsub ------------------------------------------------------------------------------

    def subscribed_topics(self) -> list[str]:
        return sorted(self.pubsub.topic_ids)

    def mesh(self) -> dict[str, list[str]]:
        """Local view: topic -> peers (base58) we know are subscribed, ourselves included."""
        out: dict[str, set[str]] = {}
        for topic, peers in self.pubsub.peer_topics.items():
            out.setdefault(topic, set()).update(p.to_base58() for p in peers)
        for topic in self.pubsub.topic_ids:
            out.setdefault(topic, set()).add(self.peer_id_str)
        return {t: sorted(ps) for t, ps in sorted(out.items())}

    def remote_topics(self) -> set[str]:
        """Topics at least one connected peer told us it is subscribed to (cheap: no encoding)."""
        return {t for t, peers in self.pubsub.peer_topics.items() if peers}

    def pubsub_peers(self) -> list[str]:
        """Peers with an open pubsub stream (base58, sorted)."""
        return sorted(p.to_base58() for p in self.pubsub.peers)

    def topics_of(self, peer: str) -> list[str]:
        """The topics ``peer`` told us it is subscribed to."""
        return topics_of(self.pubsub, peer)

    async def wait_for_pubsub_peer(self, peer: str, timeout: float) -> None:
        """Until ``peer`` has a pubsub stream with us (trio.TooSlowError after ``timeout``)."""
        await self.pubsub.wait_for_peer(parse_peer_id(peer), timeout=timeout)

    def topic_peers(self, topic: str) -> set[str]:
        return {p.to_base58() for p in self.pubsub.peer_topics.get(topic, ())}

    async def wait_for_subscription(self, peer: str, topic: str, timeout: float) -> None:
        await self.pubsub.wait_for_subscription(parse_peer_id(peer), topic, timeout=timeout)

    async def subscribe(self, topic: str, handler: TopicHandler) -> bool:
        """Subscribe and deliver each message from *other* peers to ``handler`` (in order).

        Returns False if already subscribed (the existing handler stays).
        """
        if topic in self._topics:
            return False
        scope = trio.CancelScope()
        self._topics[topic] = scope
        subscription = await self.pubsub.subscribe(topic)
        send, receive = trio.open_memory_channel[PubsubMessage](math.inf)
        own = self.peer_id.to_bytes()

        async def drain() -> None:
            # pitfall 3: libp2p's channel is bounded and drops; empty it as fast as it fills
            with scope:
                async for msg in subscription:
                    if msg.from_id == own:
                        continue  # pitfall 4: our own publish echoed back
                    try:
                        sender = ID(msg.from_id).to_base58()
                    except Exception:
                        sender = msg.from_id.hex()
                    send.send_nowait(
                        PubsubMessage(topic, bytes(msg.data), bytes(msg.from_id), sender, msg.seqno)
                    )
            await send.aclose()

        async def deliver() -> None:
            async with receive:
                async for item in receive:
                    try:
                        await handler(item)
                    except Exception:
                        # a handler bug must not stop delivery of the topic's later messages
                        logger.exception("handler for topic %s failed", topic)

        self.nursery.start_soon(drain, name=f"drain:{topic}")
        self.nursery.start_soon(deliver, name=f"deliver:{topic}")
        return True

    def reannounce_to(self, peer: str) -> bool:
        """Send our current subscriptions to ``peer`` again.

        py-libp2p forgets a peer's subscriptions when a pubsub stream to it fails during setup,
        and subscriptions are only sent in the stream's hello; this repairs such a peer's view.
        """
        queue = self.pubsub.peer_queues.get(parse_peer_id(peer))
        if queue is None:
            return False
        return bool(queue.push(self.pubsub.get_hello_packet()))

    async def unsubscribe(self, topic: str) -> bool:
        scope = self._topics.pop(topic, None)
        if scope is None:
            return False
        scope.cancel()
        await self.pubsub.unsubscribe(topic)
        return True

    async def publish(self, topic: str, data: bytes) -> None:
        """Publish with backpressure: waits while a peer's outbound queue is too full."""
        async with self._publish_lock:
            while any(len(q) > PUBLISH_HIGH_WATER for q in self.pubsub.peer_queues.values()):
                # RpcQueue offers no "drained" event; a short wait only under a burst
                await trio.sleep(0.005)
            await self.pubsub.publish(topic, data)
