"""A real swarm on loopback: one bootstrap and three providers as processes, driven via --json.

The tests share one swarm (module fixture) and run in file order: formation, publish, bursts and
a same-key restart, hostile input, kill -9, bootstrap restart, SIGTERM. Each waits on events with
a deadline; none sleeps a fixed time.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.node.swarm import Swarm, is_event

pytestmark = pytest.mark.slow

MESH = "swarm/mesh"


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    with Swarm(tmp_path_factory.mktemp("swarm")) as s:
        s.start_bootstrap()
        s.start_providers(3)
        yield s


def providers(swarm: Swarm) -> list:
    return swarm.providers


def bootmesh_topic(node, topic: str) -> set[str]:
    last = node.last("bootmesh")
    return set(last["topics"].get(topic, [])) if last else set()


def test_all_ready_and_every_node_sees_the_others(swarm: Swarm) -> None:
    boot = swarm.bootstrap
    ps = providers(swarm)
    ids = {p.peer_id for p in ps}
    assert len(ids) == 3
    for p in ps:
        assert p.ready["role"] == "provider"
        assert p.ready["addrs"][0].startswith("/ip4/127.0.0.1/tcp/")
    assert boot.ready["peer_id"] == swarm.bootstrap_maddr.rsplit("/", 1)[1]

    swarm.wait_until(lambda: boot.peer_ids() == ids, 20, "bootstrap sees all providers")
    swarm.wait_until(
        lambda: all(p.peer_ids() >= (ids - {p.peer_id}) | {boot.peer_id} for p in ps),
        20,
        "every provider sees the others and the bootstrap",
    )
    swarm.wait_until(
        lambda: all(bootmesh_topic(n, MESH) == ids for n in [boot, *ps]),
        20,
        "every node's bootmesh lists the three providers on swarm/mesh",
    )
    # the commands tell the same story
    for p in ps:
        text = p.command("peers")["text"]
        for other in ids - {p.peer_id}:
            assert other in text
        bootmesh_text = p.command("bootmesh")["text"]
        assert all(o[-6:] in bootmesh_text for o in ids)
    assert all(pid in boot.command("peers")["text"] for pid in ids)
    # providers learn each other's presence (model/backend) through swarm/mesh
    swarm.wait_until(
        lambda: all(
            p.find(lambda e, o=o: e["event"] == "peer_info" and e["peer_id"] == o and e["model"])
            for p in ps
            for o in ids - {p.peer_id}
        ),
        20,
        "peer_info with the model of every other provider",
    )


def test_bootstrap_answers_the_peer_list_protocol(swarm: Swarm) -> None:
    import trio

    from node.keys import keypair_from_seed
    from node.net.host import SwarmHost

    ps = providers(swarm)
    reply: dict = {}

    async def ask() -> None:
        host = SwarmHost(keypair_from_seed(bytes(range(2, 34))))
        async with trio.open_nursery() as nursery:
            await nursery.start(host.run)
            await host.connect(swarm.bootstrap_maddr)
            reply.update(await host.peer_list.request(swarm.bootstrap.peer_id, timeout=20))
            await host.close()

    trio.run(ask)
    listed = {p["peer_id"]: p for p in reply["peers"]}
    for p in ps:
        entry = listed[p.peer_id]
        assert entry["name"] == p.name and entry["role"] == "provider"
        assert entry["backend"] == "sim" and entry["model"]
        assert p.addr in entry["addrs"]
    assert {p.peer_id for p in ps} <= set(reply["topics"][MESH])


def test_network_commands_and_direct_links(swarm: Swarm) -> None:
    ps = providers(swarm)
    a, b = ps[0], ps[1]
    ids = {p.peer_id for p in ps}
    local = a.command("local")["text"]
    assert a.peer_id in local and a.addr in local and "provider" in local
    ping = a.command(f"ping {b.addr} 3")["text"]
    assert len([line for line in ping.splitlines() if line.endswith(" ms")]) == 4, ping
    assert "3 pings" in ping
    assert not a.command("ping /ip4/127.0.0.1/tcp/1 2", ok=False)["ok"]
    assert "floodsub stream open" in a.command(f"fsub {b.addr}")["text"]
    assert "connected to" in a.command(f"connect {b.addr}")["text"]
    bad = a.command("connect /not/a/maddr", ok=False)["text"]
    assert "not a peer multiaddr" in bad
    assert MESH in a.command("topics")["text"]
    assert b.peer_id[-6:] in a.command("mesh")["text"]
    # providers dial the providers they learn of (bounded), so the mesh is not only a star
    fpeers = "\n".join(p.command("fpeers")["text"] for p in ps)
    direct = {pid for pid in ids if pid in fpeers}
    assert direct == ids, fpeers
    out = a.command("leave swarm/mesh", ok=False)["text"]
    assert "cannot be left" in out
    out = a.command("publish swarm/mesh hello", ok=False)["text"]
    assert "signed protocol messages only" in out


def test_publish_reaches_the_other_subscribers_and_is_not_echoed(swarm: Swarm) -> None:
    ps = providers(swarm)
    for p in ps:
        p.command("join demo")
    ids = {p.peer_id for p in ps}
    swarm.wait_until(
        lambda: all(bootmesh_topic(p, "demo") == ids for p in ps), 20, "demo on every bootmesh"
    )
    sender, others = ps[0], ps[1:]
    marks = [p.mark() for p in ps]
    sender.command("publish demo hello swarm")
    for p, mark in zip(others, marks[1:], strict=True):
        msg = p.wait_event("message", since=mark, topic="demo")
        assert msg["sender"] == sender.peer_id
        assert msg["text"] == "hello swarm"
    # and the sender did not get its own message back as a peer's
    others[0].command("publish demo ping-back")
    sender.wait_event("message", since=marks[0], text="ping-back")
    assert not sender.find(is_event("message", text="hello swarm"), since=marks[0])
    # a node that left the topic no longer gets it
    others[1].command("leave demo")
    mark = others[1].mark()
    swarm.wait_until(
        lambda: others[1].peer_id not in bootmesh_topic(sender, "demo"), 20, "leave reflected"
    )
    sender.command("publish demo after-leave")
    others[0].wait_event("message", text="after-leave")
    assert not others[1].find(is_event("message", text="after-leave"), since=mark)


def test_burst_of_500_all_arrive_and_a_restarted_node_still_delivers(swarm: Swarm) -> None:
    ps = providers(swarm)
    a, b = ps[0], ps[1]
    for p in (a, b):
        p.command("join burst")
    swarm.wait_until(
        lambda: (
            {a.peer_id, b.peer_id} <= bootmesh_topic(a, "burst")
            and {a.peer_id, b.peer_id} <= bootmesh_topic(b, "burst")
        ),
        20,
        "burst topic on both bootmeshes",
    )
    mark = a.mark()
    for i in range(500):
        b.send(f"publish burst m{i}")
    swarm.wait_until(
        lambda: len(a.find_all(is_event("message", topic="burst"), since=mark)) >= 500,
        60,
        "500 burst messages at a",
    )
    texts = {e["text"] for e in a.find_all(is_event("message", topic="burst"), since=mark)}
    assert texts == {f"m{i}" for i in range(500)}

    # Restart b with the same key (same name -> same data dir): same peer id, and its new
    # messages are not dropped as "seen" by a (pitfall 5: seqno from time_ns, not time()).
    old_id = b.peer_id
    b2 = swarm.restart(b)
    assert b2.peer_id == old_id
    b2.command("join burst")
    swarm.wait_until(
        lambda: b2.peer_id in bootmesh_topic(a, "burst"), 20, "restarted b on a's bootmesh"
    )
    mark = a.mark()
    for i in range(5):
        b2.send(f"publish burst again{i}")
    swarm.wait_until(
        lambda: len(a.find_all(lambda e: e.get("text", "").startswith("again"), since=mark)) == 5,
        20,
        "messages of the restarted node",
    )


def test_garbage_and_forged_messages_are_rejected_and_counted(swarm: Swarm) -> None:
    import trio

    from node.keys import keypair_from_seed
    from node.net.host import SwarmHost
    from protocol.envelope import SIGNING_CONTEXT, canonical, seal
    from protocol.identity import NaclSigner
    from protocol.messages import Presence

    ps = providers(swarm)
    target = ps[0]
    mark = target.mark()
    own_key = bytes(range(32))
    stranger = NaclSigner(bytes(range(1, 33)))

    async def hostile_peer() -> None:
        host = SwarmHost(keypair_from_seed(own_key))
        async with trio.open_nursery() as nursery:
            await nursery.start(host.run)

            async def ignore(msg: object) -> None:
                pass

            await host.subscribe(MESH, ignore)
            await host.connect(target.addr)
            await host.wait_for_subscription(target.peer_id, MESH, 10)
            from node.keys import Libp2pSigner

            me = Libp2pSigner(keypair_from_seed(own_key))
            seq = time.time_ns()
            good = seal(Presence(name="hostile"), task="", signer=me, seq=seq, ts_ms=1)
            forged_from = seal(Presence(name="forged"), task="", signer=stranger, seq=seq, ts_ms=1)
            tampered = bytearray(good.raw)
            tampered[good.raw.index(good.sig) + 10] ^= 0x01  # one bit of the signature
            await host.publish(MESH, b"\x00\xffthis is not msgpack")
            await host.publish(MESH, b"plain text is not allowed on the mesh")
            await host.publish(MESH, forged_from.raw)  # from != the pubsub sender
            await host.publish(MESH, bytes(tampered))  # bad signature
            await host.publish(MESH, good.raw)  # accepted once...
            await host.publish(MESH, good.raw)  # ...then a replay
            for i in (1, 2):  # a node of wire version 1, correctly signed: said once, not twice
                old = {"v": 1, "kind": "presence", "task": "", "from": me.peer_id, "seq": seq + i,
                       "ts": 1, "body": Presence(name="old").to_wire()}  # fmt: skip
                sig = me.sign(SIGNING_CONTEXT + canonical(old))
                await host.publish(MESH, canonical({**old, "sig": sig}))
            await trio.to_thread.run_sync(
                lambda: target.wait_for(
                    lambda e: e["event"] == "rejected" and e["count"] >= mark_count + 7,
                    30,
                    since=mark,
                    what="7 rejections",
                )
            )
            await host.close()

    before = target.last("rejected")
    mark_count = before["count"] if before else 0
    trio.run(hostile_peer)
    # one event per sender per interval: the first one at once, the rest in a summary
    reasons = []
    for e in target.find_all(is_event("rejected"), since=mark):
        reasons += [e["reason"]] if not e.get("repeats") else list(e["reasons"])
    assert "sender_mismatch" in reasons
    assert "bad_signature" in reasons
    assert "replay" in reasons
    # both counted (the wait above), reported once or folded into the sender's summary line
    assert "unknown_version" in reasons
    told = [
        e for e in target.find_all(is_event("error"), since=mark) if "wire protocol" in e["message"]
    ]
    assert len(told) == 1, told
    assert sum(r in ("not_msgpack", "malformed", "bad_type") for r in reasons) >= 2, reasons
    assert all(e["sender"] for e in target.find_all(is_event("rejected"), since=mark))
    # the good presence was taken, and the node still works
    assert target.alive
    target.command("peers")
    other = ps[1]
    other_mark = target.mark()
    target.command("join still-alive")
    other.command("join still-alive")
    swarm.wait_until(
        lambda: other.peer_id in bootmesh_topic(target, "still-alive"), 20, "still-alive joined"
    )
    other.command("publish still-alive yes")
    target.wait_event("message", since=other_mark, text="yes")


def test_kill_9_provider_disappears_everywhere_within_3s(swarm: Swarm) -> None:
    ps = providers(swarm)
    victim, survivors = ps[-1], ps[:-1]
    boot = swarm.bootstrap
    victim_id = victim.peer_id
    swarm.wait_until(
        lambda: all(victim_id in n.peer_ids() for n in [boot, *survivors]), 20, "victim known"
    )
    victim.kill()
    start = time.monotonic()
    swarm.wait_until(
        lambda: all(victim_id not in n.peer_ids() for n in [boot, *survivors]),
        3.0,
        "the killed provider gone from every view",
    )
    swarm.wait_until(
        lambda: victim_id not in bootmesh_topic(survivors[0], MESH), 3.0, "and from the bootmesh"
    )
    assert time.monotonic() - start < 3.0


def test_restarted_bootstrap_is_found_again(swarm: Swarm) -> None:
    ps = providers(swarm)
    boot = swarm.bootstrap
    boot_id = boot.peer_id
    marks = [p.mark() for p in ps]
    assert boot.terminate(timeout=10) == 0
    for p, mark in zip(ps, marks, strict=True):
        p.wait_event("peer_left", since=mark, peer_id=boot_id, timeout=10)
    marks = [p.mark() for p in ps]
    boot2 = swarm.restart(boot)
    back = time.monotonic()
    for p, mark in zip(ps, marks, strict=True):
        p.wait_event("peer_joined", since=mark, peer_id=boot_id, timeout=10)
    assert time.monotonic() - back < 5.0
    ids = {p.peer_id for p in ps}
    swarm.wait_until(lambda: boot2.peer_ids() == ids, 10, "restarted bootstrap sees providers")
    swarm.wait_until(
        lambda: all(bootmesh_topic(p, MESH) == ids for p in ps), 10, "fresh bootmesh everywhere"
    )


def test_sigterm_exits_0_within_3s_and_stderr_stays_clean(swarm: Swarm) -> None:
    nodes = [n for n in swarm.nodes if n.alive]
    for i, node in enumerate(nodes):
        start = time.monotonic()
        if i == 0:  # Ctrl-C behaves the same
            node.proc.send_signal(signal.SIGINT)
            code = node.wait_exit(timeout=10)
        else:
            code = node.terminate(timeout=10)
        elapsed = time.monotonic() - start
        assert node.find(lambda e: e["event"] == "log" and e["message"] == "stopping")
        assert code == 0, node.tail()
        assert elapsed < 3.0, f"{node.name} took {elapsed:.2f} s"
    for node in swarm.nodes:
        if node.proc.returncode != -9:
            assert node.stderr_lines == [], f"{node.name}: {node.stderr_lines[:5]}"
        assert not node.find(is_event("_raw")), node.find(is_event("_raw"))


def test_bootstrap_started_after_the_providers_is_found_and_hung_peers_are_dropped(
    tmp_path: Path,
) -> None:
    with Swarm(tmp_path) as s:
        # --max-dials 0: a pure star, so everything below goes through the bootstrap
        ps = s.start_providers(2, ["--max-dials", "0", "--hung-after", "3"], wait=False)
        for p in ps:
            p.wait_for(
                lambda e: e["event"] == "log" and "unreachable" in e["message"],
                30,
                what="a failed dial of the bootstrap",
            )
        assert all(p.ready is None for p in ps)
        boot = s.start_bootstrap(["--hung-after", "3"])
        up = time.monotonic()
        for p in ps:
            p.wait_ready(timeout=10)
        assert time.monotonic() - up < 5.0
        ids = {p.peer_id for p in ps}
        s.wait_until(lambda: boot.peer_ids() == ids, 10, "bootstrap sees both providers")

        # the hub relays a topic only providers joined (py-libp2p forwards only topics the node
        # itself subscribes to: the bootstrap joins them for relaying)
        a, b = ps
        assert b.peer_id not in a.command("fpeers")["text"]
        for p in ps:
            p.command("join star")
        s.wait_until(lambda: "star" in boot.command("topics")["text"], 10, "bootstrap relays star")
        s.wait_until(
            lambda: set((a.last("bootmesh") or {"topics": {}})["topics"].get("star", [])) == ids,
            10,
            "star on a's bootmesh",
        )
        b.command("publish star via-the-hub")
        assert a.wait_event("message", text="via-the-hub")["sender"] == b.peer_id

        # A hung peer (stopped, its sockets still open) is found by the ping heartbeat.
        hung = ps[1]
        hung.proc.send_signal(signal.SIGSTOP)
        try:
            s.wait_until(lambda: hung.peer_id not in boot.peer_ids(), 20, "hung provider dropped")
            s.wait_until(lambda: hung.peer_id not in ps[0].peer_ids(), 20, "and by the other")
        finally:
            hung.proc.send_signal(signal.SIGCONT)
        # once it runs again it reconnects by itself
        s.wait_until(lambda: hung.peer_id in boot.peer_ids(), 20, "resumed provider back")
        # stdin EOF does not stop a headless node: it keeps following the swarm
        mark = ps[0].mark()
        ps[0].close_stdin()
        ps[0].wait_for(
            lambda e: e["event"] == "log" and "stdin closed" in e["message"], what="EOF noticed"
        )
        b.command("publish star after-eof")
        ps[0].wait_event("message", since=mark, text="after-eof")
        for node in [boot, *ps]:
            assert node.terminate() == 0, node.tail()
