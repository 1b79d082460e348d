"""``tests.node.swarm.Swarm`` on a :class:`~tests.netns.lab.Lab`: each node on its own host.

Nodes run as ``ip netns exec <host> python -m node ... --host 0.0.0.0`` (what an operator runs on
a LAN), the bootstrap on port 8888 of its host, providers on a free port of theirs. Keys can be
planted before a node starts (:meth:`LanSwarm.plant_keys`) so the order of peer ids — which
decides who dials whom — is known to the test.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from node.localswarm import node_argv
from tests.netns.lab import Host, Lab
from tests.node.swarm import DEMO_BOOTSTRAP_ID, NodeProc, Swarm
from tests.planted_keys import plant_keys

BOOTSTRAP_PORT = 8888
_ANNOUNCING = re.compile(r"^listening on (\S+); announcing (.*?)(?: \(loopback.*)?$")


def announced(node: NodeProc, timeout: float = 60) -> list[str]:
    """The addresses a node's startup line says it announces (``/ip4/A/tcp/P``, no ``/p2p``)."""
    line = node.wait_for(
        lambda e: e.get("event") == "log" and bool(_ANNOUNCING.match(e.get("message", ""))),
        timeout,
        what="the startup line",
    )
    addrs = _ANNOUNCING.match(line["message"]).group(2).split()  # type: ignore[union-attr]
    return [a.split("/p2p/")[0] for a in addrs]


class LanSwarm(Swarm):
    def __init__(self, workdir: Path, lab: Lab, boot_host: Host, **kwargs: object) -> None:
        super().__init__(workdir, bootstrap_port=BOOTSTRAP_PORT, **kwargs)  # type: ignore[arg-type]
        self.lab = lab
        self.boot_host = boot_host
        self.bootstrap_maddr = f"/ip4/{boot_host.ip()}/tcp/{BOOTSTRAP_PORT}/p2p/{DEMO_BOOTSTRAP_ID}"
        self.placement: dict[str, Host] = {}

    def place(self, name: str, host: Host) -> None:
        """Run the node called ``name`` on ``host``."""
        self.placement[name] = host

    def plant_keys(self, names: Sequence[str]) -> dict[str, str]:
        """Give ``names`` fresh keys whose peer ids sort in that order; returns name -> id."""
        return plant_keys(self.data_root, names)

    def spawn(
        self, subcommand: str, name: str, args: Sequence[str] = (), role: str = "provider"
    ) -> NodeProc:
        host = self.boot_host if role == "bootstrap" else self.placement[name]
        argv = [*host.exec_prefix(), *node_argv(subcommand, name, ["--host", "0.0.0.0", *args])]
        node = NodeProc(self, name, role, argv, self.env())
        self.nodes.append(node)
        return node
