"""Nodes on separate network stacks (Linux network namespaces on a bridge; see conftest.py).

The tests share one LAN and run in file order: the last one kills the bootstrap. Each prints one
line (``pytest -s``) with what the nodes announced and how the session went.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from tests.e2e.conftest import assert_full_matrix
from tests.netns.conftest import BRAVO_FORWARD, PROVIDERS, Lan
from tests.netns.lab import Lab
from tests.netns.lanswarm import LanSwarm, announced
from tests.node.swarm import NodeProc, is_event

pytestmark = pytest.mark.slow

SWARM_NET = ipaddress.IPv4Network("10.231.1.0/24")
_LINK = re.compile(r"^direct link to (\S+) at ([\d.]+):(\d+)$")
PROMPT = "What is 6 times 7?"


def ips(addrs: list[str]) -> list[str]:
    return [a.split("/")[2] for a in addrs]


def direct_links(node: NodeProc) -> dict[str, str]:
    """Peer id suffix -> the IP this node reached it at, from its "direct link" log lines."""
    links = {}
    for e in node.find_all(lambda e: e.get("event") == "log"):
        m = _LINK.match(e.get("message", ""))
        if m:
            links[m.group(1)] = m.group(2)
    return links


def run_session(leader: NodeProc, n: int) -> dict:
    mark = leader.mark()
    leader.send(f"pipe {n} {PROMPT}")
    return leader.wait_for(
        lambda e: e.get("event") == "result" and bool(e.get("winner")), 60, mark, "a result"
    )


def test_every_host_announces_the_addresses_its_peers_can_dial(lan: Lan) -> None:
    got = {"bootstrap": announced(lan.boot)} | {name: announced(lan[name]) for name in PROVIDERS}
    assert got["bootstrap"] == ["/ip4/10.231.1.1/tcp/8888"]
    assert ips(got["alpha"]) == ["10.231.1.11"]
    assert got["bravo"][0] == BRAVO_FORWARD  # the operator's address first
    assert ips(got["bravo"]) == ["203.0.113.7", "10.231.1.12"]
    # no default route: before, this host announced 127.0.0.1 and nobody could dial it
    assert ips(got["noroute"]) == ["10.231.1.13"]
    # both interfaces, the default route's first (it is not the one the swarm shares)
    assert ips(got["twonet"]) == ["10.231.2.14", "10.231.1.14"]
    for node in [lan.boot, *lan.nodes.values()]:
        assert not node.find(lambda e: e.get("event") == "log" and e.get("level") == "WARNING")
        # what `ready` reports is the same list, with the peer id
        assert [a.split("/p2p/")[0] for a in node.ready["addrs"]] == got[node.name]  # type: ignore[index]
    print("\nannounced:", "; ".join(f"{k} {' '.join(v)}" for k, v in got.items()))


def test_a_session_across_hosts(lan: Lan) -> None:
    result = run_session(lan["alpha"], 3)
    executors, verifiers = assert_full_matrix(result)
    assert set(executors + verifiers) == {lan.ids[n] for n in ("bravo", "noroute", "twonet")}
    print(f"\nsession led by alpha across hosts: winner {result['winner'][-6:]}, complete")


def test_direct_links_form_over_the_subnet_the_peers_share(lan: Lan) -> None:
    """Each pair is dialed by its lower id: noroute and twonet only by others, at an address
    that reaches them (twonet's default-route address does not)."""
    names = list(PROVIDERS)
    expected = {(a, b) for i, a in enumerate(names) for b in names[i + 1 :]}
    short = {lan.ids[n][-6:]: n for n in names}

    def links() -> dict[tuple[str, str], str]:
        return {
            (a, short[s]): ip for a in names for s, ip in direct_links(lan[a]).items() if s in short
        }

    lan.swarm.wait_until(lambda: set(links()) >= expected, 60, "a direct link between each pair")
    found = links()
    assert set(found) == expected  # nobody dialed a lower id: one link per pair
    for (_a, b), at in found.items():
        assert ipaddress.IPv4Address(at) in SWARM_NET
        assert at == {"alpha": "10.231.1.11", "bravo": "10.231.1.12"}.get(b, at)
    assert found[("alpha", "noroute")] == "10.231.1.13"
    assert {found[(a, "twonet")] for a in ("alpha", "bravo", "noroute")} == {"10.231.1.14"}
    for name in names:
        table = lan[name].command("peers")["text"]
        for other in names:
            if other != name:
                line = next(ln for ln in table.splitlines() if ln.startswith(lan.ids[other]))
                assert line.endswith("direct"), f"{name}: {line}"
    print("\ndirect links:", ", ".join(f"{a}->{b} at {ip}" for (a, b), ip in sorted(found.items())))


def test_without_the_bootstrap_a_provider_leads_over_direct_links(lan: Lan) -> None:
    """Last in the file: the bootstrap is killed. The leader is the host without a default
    route; the other participants include the host with two interfaces."""
    marks = {name: lan[name].mark() for name in PROVIDERS}
    boot_id = lan.boot.peer_id
    lan.boot.kill()
    for name in PROVIDERS:
        lan[name].wait_for(is_event("peer_left", peer_id=boot_id), 30, marks[name], "hub gone")
    result = run_session(lan["noroute"], 3)
    executors, verifiers = assert_full_matrix(result)
    assert set(executors + verifiers) == {lan.ids[n] for n in ("alpha", "bravo", "twonet")}
    missing = result["missing"]
    assert not (any(missing.values()) if isinstance(missing, dict) else missing), missing
    print(f"\nsession led by noroute without the bootstrap: winner {result['winner'][-6:]}")


def test_a_host_with_only_loopback_warns_that_no_other_machine_can_dial_it(
    lab: Lab, tmp_path: Path
) -> None:
    lonely = lab.host("lonely")  # no interface but loopback
    with LanSwarm(tmp_path, lab, lonely) as swarm:
        boot = swarm.start_bootstrap(wait=False)
        assert announced(boot) == ["/ip4/127.0.0.1/tcp/8888"]
        warning = boot.wait_for(
            lambda e: e.get("event") == "log" and e.get("level") == "WARNING",
            60,
            what="the loopback warning",
        )
        assert "only address to announce is loopback" in warning["message"]
        print(f"\nlonely host: {warning['message']}")
