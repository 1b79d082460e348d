"""The LAN the multi-host tests share: five hosts, each its own network stack.

::

    bridge "swarm" 10.231.1.0/24 (its router .254 is not part of the test: nothing answers)
      boot     .1   eth0, default route via .254         the bootstrap, port 8888
      alpha    .11  eth0, default route via .254
      bravo    .12  eth0, default route via .254, --announce /ip4/203.0.113.7/tcp/4001
                                                           (a port forward on some router)
      noroute  .13  eth0, NO default route                 (an isolated lab network)
      twonet   .14  eth1; and eth0 10.231.2.14 on bridge "side" with the default route via
                    10.231.2.254: two interfaces, the default one does not reach the swarm

Keys are planted so the peer ids sort alpha < bravo < noroute < twonet: every provider dials its
successors (``--max-dials 3``: all of them), so each pair is linked once, by the lower id, and
noroute and twonet are only ever dialed — at the addresses they announced.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.netns.lab import Lab, unavailable
from tests.netns.lanswarm import LanSwarm
from tests.node.swarm import NodeProc

PROVIDERS = ("alpha", "bravo", "noroute", "twonet")
FAST = ["--sim-gen-ms", "0", "--sim-judge-ms", "0", "--max-dials", "3"]
BRAVO_FORWARD = "/ip4/203.0.113.7/tcp/4001"
START_TIMEOUT = 90.0  # five interpreters importing libp2p at once on two shared cores


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    reason = unavailable()
    if reason is not None:
        pytest.skip(f"multi-host tests skipped: {reason}")
    with Lab() as lab:
        yield lab


@dataclass
class Lan:
    lab: Lab
    swarm: LanSwarm
    boot: NodeProc
    nodes: dict[str, NodeProc]
    ids: dict[str, str]

    def __getitem__(self, name: str) -> NodeProc:
        return self.nodes[name]


@pytest.fixture(scope="module")
def lan(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lan]:
    boot = lab.host("boot")
    lab.wire(boot, "eth0", "swarm", "10.231.1.1/24")
    lab.default_route(boot, "10.231.1.254")
    hosts = {}
    for name, last in (("alpha", 11), ("bravo", 12), ("noroute", 13)):
        host = hosts[name] = lab.host(name)
        lab.wire(host, "eth0", "swarm", f"10.231.1.{last}/24")
        if name != "noroute":
            lab.default_route(host, "10.231.1.254")
    twonet = hosts["twonet"] = lab.host("twonet")
    lab.wire(twonet, "eth0", "side", "10.231.2.14/24")
    lab.wire(twonet, "eth1", "swarm", "10.231.1.14/24")
    lab.default_route(twonet, "10.231.2.254")

    with LanSwarm(tmp_path_factory.mktemp("lan"), lab, boot) as swarm:
        ids = swarm.plant_keys(PROVIDERS)
        for name, host in hosts.items():
            swarm.place(name, host)
        boot_node = swarm.start_bootstrap(timeout=START_TIMEOUT)
        nodes = {}
        for name in PROVIDERS:
            extra = ["--announce", BRAVO_FORWARD] if name == "bravo" else []
            nodes[name] = swarm.start_provider(name, [*FAST, *extra], wait=False)
        for node in nodes.values():
            node.wait_ready(START_TIMEOUT)
        yield Lan(lab, swarm, boot_node, nodes, ids)
