"""SwarmHost on its own: two real libp2p hosts over loopback TCP in one trio run."""

from __future__ import annotations

import pytest
import trio

from node.host import HostError, PubsubMessage, SwarmHost, parse_p2p_maddr
from node.keys import keypair_from_seed


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
