"""A peer cannot turn the swarm into its dialer: addresses in presence are validated and bounded.

The rogue (a real node, its own key) announces 16 addresses: four that are not its own or not
dialable (another peer's id, 0.0.0.0, multicast, broadcast) pointing at a "decoy" port, and
twelve of its own id pointing at twelve "target" ports. Two honest providers, whose ids sort
below the rogue's so that both dial it, must drop the four (counted as ``bad_addrs``), dial at
most eight of the twelve, each once, and then leave the rogue alone.
"""

from __future__ import annotations

import json
import selectors
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.addresses import MAX_PEER_ADDRS
from tests.node.swarm import NodeProc, Swarm
from tests.planted_keys import plant_keys

pytestmark = pytest.mark.slow

FAST = ["--sim-gen-ms", "0", "--sim-judge-ms", "0"]


class Listeners:
    """TCP listeners on 127.0.0.1 that count the connections they get and close each at once."""

    def __init__(self, n: int) -> None:
        self.socks = []
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            s.listen(64)
            s.setblocking(False)
            self.socks.append(s)
        self.ports = [s.getsockname()[1] for s in self.socks]
        self.hits = [0] * n
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as sel:
            for i, s in enumerate(self.socks):
                sel.register(s, selectors.EVENT_READ, i)
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.1):
                    try:
                        conn, _ = key.fileobj.accept()  # type: ignore[union-attr]
                    except BlockingIOError:
                        continue
                    self.hits[key.data] += 1
                    conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for s in self.socks:
            s.close()


@pytest.fixture
def listeners() -> Iterator[Listeners]:
    ls = Listeners(13)
    try:
        yield ls
    finally:
        ls.close()


def test_a_peer_cannot_make_others_dial_where_it_likes(
    tmp_path: Path, listeners: Listeners
) -> None:
    decoy, targets = listeners.ports[0], listeners.ports[1:]
    with Swarm(tmp_path) as s:
        ids = plant_keys(s.data_root, ["p1", "p2", "rogue"])
        rogue_id = ids["rogue"]
        s.start_bootstrap(timeout=60)
        providers = [s.start_provider(name, FAST, wait=False) for name in ("p1", "p2")]
        for p in providers:
            p.wait_ready(60)
        crafted = [
            f"/ip4/127.0.0.1/tcp/{decoy}/p2p/{ids['p1']}",  # somebody else's id
            f"/ip4/0.0.0.0/tcp/{decoy}/p2p/{rogue_id}",
            f"/ip4/224.0.0.1/tcp/{decoy}/p2p/{rogue_id}",
            f"/ip4/255.255.255.255/tcp/{decoy}/p2p/{rogue_id}",
            *(f"/ip4/127.0.0.1/tcp/{port}/p2p/{rogue_id}" for port in targets),
        ]
        argv = [sys.executable, "-m", "tests.e2e.rogue_addrs", "--name", "rogue"]
        rogue = NodeProc(s, "rogue", "rogue", [*argv, "--addrs", json.dumps(crafted)], s.env())
        s.nodes.append(rogue)
        rogue.wait_for(lambda e: e.get("rogue") == "presence", 60, what="the crafted presence")

        for p in providers:
            p.wait_for(
                lambda e: (
                    e.get("event") == "rejected"
                    and e.get("reason") == "bad_addrs"
                    and e.get("sender") == rogue_id
                ),
                30,
                what="the bad addresses counted",
            )
            p.wait_for(
                lambda e: (
                    e.get("event") == "log"
                    and e.get("message", "").startswith(f"no address of peer {rogue_id[-6:]}")
                ),
                30,
                what="the dials to the rogue given up",
            )
        assert listeners.hits[0] == 0  # the decoy: nothing that is not the rogue's own address
        kept = listeners.hits[1 : 1 + MAX_PEER_ADDRS]
        assert kept == [2] * MAX_PEER_ADDRS  # each provider: each kept address once
        assert listeners.hits[1 + MAX_PEER_ADDRS :] == [0] * (12 - MAX_PEER_ADDRS)  # the cap

        # announcing itself again does not buy another round of dials (the back-off)
        marks = [p.mark() for p in providers]
        rogue.send("again")
        for p, mark in zip(providers, marks, strict=True):
            p.wait_for(
                lambda e: e.get("event") == "rejected" and e.get("sender") == rogue_id,
                30,
                mark,
                what="the second crafted presence",
            )
            p.command("peers")  # a round trip through the node after it handled the presence
        assert sum(listeners.hits) == 2 * MAX_PEER_ADDRS
