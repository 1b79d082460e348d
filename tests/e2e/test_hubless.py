"""A session without the hub: the bootstrap is killed and the providers' direct links carry it.

While the bootstrap is up every message goes through it (hub-first routing, silent relays) and
joins and scores go to the leader's own topic. Once it is gone that topic reaches only the
leader's direct peers, so the session must fall back to flooding its own topic over the direct
links. A chain of direct links (made with `connect`) puts the far end two hops from the leader:
its join and its scores must travel through the middle node.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.conftest import assert_full_matrix
from tests.node.swarm import Swarm, is_event

pytestmark = pytest.mark.slow

ZERO = ["--max-dials", "0", "--sim-gen-ms", "0", "--sim-judge-ms", "0"]


def test_a_session_runs_over_the_direct_links_once_the_hub_is_gone(tmp_path: Path) -> None:
    with Swarm(tmp_path) as s:
        boot = s.start_bootstrap(timeout=60)
        ps = s.start_providers(3, ZERO, timeout=60)

        # A chain of direct links, made by hand (`--max-dials 0`: no automatic dials)
        low, mid, high = ps
        assert "connected to" in low.command(f"connect {mid.addr}")["text"]
        assert "connected to" in mid.command(f"connect {high.addr}")["text"]

        def linked(a: object, b: object) -> bool:
            return b.peer_id in a.command("fpeers")["text"]  # type: ignore[attr-defined]

        # each `fpeers` is a round trip to a node: this polls at that pace, bounded
        deadline = time.monotonic() + 30
        while not (linked(low, mid) and linked(mid, high)):
            assert time.monotonic() < deadline, "the floodsub streams never opened"
        assert not linked(low, high)  # the two ends are two hops apart

        marks = {p.name: p.mark() for p in ps}
        boot.kill()
        for p in ps:
            p.wait_for(is_event("peer_left", peer_id=boot.peer_id), 30, marks[p.name], "hub gone")

        mark = low.mark()
        low.send("pipe 2 What is 6 times 7?")
        result = low.wait_for(
            lambda e: e.get("event") == "result" and bool(e.get("winner")),
            60,
            mark,
            what="a result without the hub",
        )
        executors, verifiers = assert_full_matrix(result)  # every score arrived
        assert set(executors + verifiers) == {mid.peer_id, high.peer_id}  # high: two hops away
        assert result["missing"] == {"executors": [], "verifiers": [], "scores": {}, "invalid": {}}
        # and the far end got the leader's result back over the chain
        high.wait_for(lambda e: e.get("event") == "result" and e.get("task") == result["task"], 30)


def test_a_session_over_gossipsub_with_the_hub_subscribing_for_real(tmp_path: Path) -> None:
    """Silent relays are for floodsub leaves, which send everything to the hub; gossipsub
    routes along announced subscriptions, so there the bootstrap subscribes to what it relays."""
    with Swarm(tmp_path, env={"RNET_ROUTER": "gossipsub"}) as s:
        s.start_bootstrap(timeout=60)
        ps = s.start_providers(3, ZERO, timeout=60)
        s.wait_until(lambda: all(len(p.peer_ids()) >= 3 for p in ps), 60, "everyone known")
        leader = ps[0]
        mark = leader.mark()
        leader.send("pipe 2 What is 6 times 7?")
        result = leader.wait_for(
            lambda e: e.get("event") == "result" and bool(e.get("winner")), 60, mark, "result"
        )
        executors, verifiers = assert_full_matrix(result)
        assert set(executors + verifiers) == {ps[1].peer_id, ps[2].peer_id}
