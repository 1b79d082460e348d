"""SwarmHost on its own: two real libp2p hosts over loopback TCP in one trio run."""

from __future__ import annotations

import pytest
import trio

from node.errors import HostError
from node.keys import keypair_from_seed
from node.net.addrs import parse_p2p_maddr
from node.net.host import SwarmHost
from node.net.links import PubsubMessage


@pytest.mark.parametrize("router", ["floodsub", "gossipsub"])
def test_two_hosts_deliver_a_burst_in_order_without_echo(router: str) -> None:
    got: dict[str, list[bytes]] = {"a": [], "b": []}

    async def main() -> None:
        a = SwarmHost(keypair_from_seed(bytes([1] * 32)), router=router)
        b = SwarmHost(keypair_from_seed(bytes([2] * 32)), router=router)
        async with trio.open_nursery() as nursery:
            await nursery.start(a.run)
            await nursery.start(b.run)

            all_in = trio.Event()

            def collect(name: str):
                async def handler(msg: PubsubMessage) -> None:
                    got[name].append(msg.data)
                    if len(got["a"]) == 300:
                        all_in.set()

                return handler

            await a.subscribe("t", collect("a"))
            await b.subscribe("t", collect("b"))
            assert await b.connect(a.addrs()[0]) == a.peer_id_str
            await b.wait_for_subscription(a.peer_id_str, "t", 10)
            await a.wait_for_subscription(b.peer_id_str, "t", 10)
            assert a.mesh()["t"] == sorted([a.peer_id_str, b.peer_id_str])
            assert await b.ping_once(a.peer_id_str) >= 0
            for i in range(300):
                await b.publish("t", b"m%d" % i)
            with trio.fail_after(30):
                await all_in.wait()
            await a.close()
            await b.close()

    trio.run(main)
    assert got["a"] == [b"m%d" % i for i in range(300)]  # all of them, in order
    assert got["b"] == []  # pitfall 4: b's own publishes are not delivered back to it


def test_bad_addresses_and_a_peer_that_comes_up_after_a_failed_dial() -> None:
    from tests.node.swarm import free_port

    with pytest.raises(HostError, match="not a peer multiaddr"):
        parse_p2p_maddr("/ip4/127.0.0.1/tcp/1")
    port = free_port()

    async def main() -> None:
        late = SwarmHost(keypair_from_seed(bytes([4] * 32)), listen_port=port)
        dialer = SwarmHost(keypair_from_seed(bytes([3] * 32)))
        target = f"/ip4/127.0.0.1/tcp/{port}/p2p/{late.peer_id_str}"
        async with trio.open_nursery() as nursery:
            await nursery.start(dialer.run)
            with pytest.raises(HostError, match="own address"):
                await dialer.connect(dialer.addrs()[0])
            with pytest.raises(HostError, match=r"failed|timed out"):
                await dialer.connect(target, timeout=5)
            await nursery.start(late.run)
            # pitfall 6: libp2p would block the peer for 60 s after that failure
            assert await dialer.connect(target, timeout=5) == late.peer_id_str
            await dialer.close()
            await late.close()

    trio.run(main)


def test_leaves_route_through_the_hub_and_flood_their_direct_links_only_without_it() -> None:
    """Floodsub over a star with extra direct links: while the hub is there every message is
    sent once to the hub and once by the hub to each other leaf (no duplicates over the direct
    links); once the hub is gone the direct links carry the messages (plain floodsub)."""
    got: dict[str, list[bytes]] = {"hub": [], "a": [], "b": [], "c": []}
    sends: list[int] = []

    async def main() -> None:
        hub = SwarmHost(keypair_from_seed(bytes([10] * 32)))
        hub_lost = {name: trio.Event() for name in "abc"}

        def on_change(name: str):  # type: ignore[no-untyped-def]
            def changed(peer: str, what: str) -> None:
                if peer == hub.peer_id_str and what == "disconnected":
                    hub_lost[name].set()

            return changed

        a, b, c = (
            SwarmHost(keypair_from_seed(bytes([11 + i] * 32)), on_peer_change=on_change(name))
            for i, name in enumerate("abc")
        )
        leaves = {"a": a, "b": b, "c": c}
        routed = trio.Event()  # every node's router has decided where the message goes
        for host in (hub, a, b, c):
            router = host.pubsub.router
            original = router._get_peers_to_send

            def counted(*args, _original=original, **kwargs):  # type: ignore[no-untyped-def]
                peers = list(_original(*args, **kwargs))
                sends.append(len(peers))
                if len(sends) == 4:
                    routed.set()
                return peers

            router._get_peers_to_send = counted  # type: ignore[method-assign]
        arrived = trio.Event()
        expect = {"a": 0, "b": 1, "c": 1}

        def collect(name: str):  # type: ignore[no-untyped-def]
            async def handler(msg: PubsubMessage) -> None:
                got[name].append(msg.data)
                if all(len(got[n]) >= k for n, k in expect.items()):
                    arrived.set()

            return handler

        async with trio.open_nursery() as nursery:
            for host in (hub, a, b, c):
                await nursery.start(host.run)
            await hub.subscribe("t", collect("hub"))
            for name, leaf in leaves.items():
                await leaf.subscribe("t", collect(name))
                await leaf.connect(hub.addrs()[0])
                leaf.set_hub(hub.peer_id_str)
            await a.connect(b.addrs()[0])  # direct links a-b and b-c
            await b.connect(c.addrs()[0])
            links = [(hub, a), (hub, b), (hub, c), (a, b), (b, a), (b, c), (c, b)]
            links += [(x, hub) for x in (a, b, c)]
            for x, y in links:
                await x.wait_for_subscription(y.peer_id_str, "t", 10)

            sends.clear()
            await a.publish("t", b"via hub")
            with trio.fail_after(20):
                await arrived.wait()
            # a -> hub, hub -> b and c; nobody forwards over a direct link
            with trio.fail_after(20):
                await routed.wait()
            assert sum(sends) == 3, sends

            await hub.close()
            with trio.fail_after(20):
                for lost in hub_lost.values():
                    await lost.wait()
            # a -> b -> c over the direct links, the first publish after the hub died included
            # (pubsub forgets a dead hub a moment after its connection closed: in between, a
            # message routed to it would be lost)
            arrived = trio.Event()
            expect = {"a": 0, "b": 2, "c": 2}
            await a.publish("t", b"without hub")
            with trio.fail_after(20):
                await arrived.wait()
            for leaf in leaves.values():
                await leaf.close()

    trio.run(main)
    assert got["a"] == []
    # each exactly once (not once per link), the second relayed by b over the direct links
    assert got["b"] == got["c"] == [b"via hub", b"without hub"]


def test_a_hub_relays_a_topic_it_never_subscribed_to_and_announces_nothing() -> None:
    got: list[bytes] = []

    async def main() -> None:
        hub = SwarmHost(keypair_from_seed(bytes([20] * 32)))
        a, b = (SwarmHost(keypair_from_seed(bytes([21 + i] * 32))) for i in range(2))
        async with trio.open_nursery() as nursery:
            for host in (hub, a, b):
                await nursery.start(host.run)
            arrived = trio.Event()

            async def handler(msg: PubsubMessage) -> None:
                got.append(msg.data)
                arrived.set()

            assert hub.relay("t") and not hub.relay("t")
            for leaf in (a, b):
                await leaf.connect(hub.addrs()[0])
                leaf.set_hub(hub.peer_id_str)
            await a.subscribe("t", handler)
            await hub.wait_for_subscription(a.peer_id_str, "t", 10)
            await b.pubsub.wait_for_peer(hub.peer_id, 10)  # b can route through the hub
            assert b.hub_connected()
            await b.publish("t", b"relayed")  # b knows no subscriber: it goes to the hub
            with trio.fail_after(10):
                await arrived.wait()
            # the relay is silent: no leaf was told the hub is on the topic
            assert hub.peer_id_str not in a.topic_peers("t") | b.topic_peers("t")
            assert hub.relayed_topics() == ["t"] and hub.subscribed_topics() == []
            assert hub.unrelay("t") and not hub.unrelay("t")
            for host in (a, b, hub):
                await host.close()

    trio.run(main)
    assert got == [b"relayed"]
