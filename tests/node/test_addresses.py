"""Which addresses a node announces and in which order it dials a peer's (node/net/reach.py)."""

from __future__ import annotations

import logging

import pytest

from node.net.reach import (
    DialBudget,
    DialMemory,
    Interface,
    announced_addrs,
    dial_order,
    local_interfaces,
    parse_announce,
    startup_notes,
    with_seen_at,
)
from protocol.addresses import MAX_PEER_ADDRS, AddressError, DialAddr, parse_addr

PEER = "12D3KooWPvoF9HfWisUgV2P7A5fq7wW2CAAqzZE45sVbKdxGRv5s"
LO = Interface.of("lo", "127.0.0.1/8")
ETH = Interface.of("eth0", "192.168.1.20/24")
WIFI = Interface.of("wlan0", "10.8.0.5/16")
DOCKER = Interface.of("docker0", "172.17.0.1/16")
LINK_LOCAL = Interface.of("eth1", "169.254.7.7/16")


def a(ip: str, port: int = 4001) -> DialAddr:
    return parse_addr(f"/ip4/{ip}/tcp/{port}/p2p/{PEER}", peer_id=PEER)


# -- what a node announces ---------------------------------------------------------------------


def test_a_wildcard_announces_every_interface_the_default_route_first_loopback_never() -> None:
    got = announced_addrs("0.0.0.0", 4001, [LO, DOCKER, ETH, WIFI], default_ip="10.8.0.5")
    assert got == [
        "/ip4/10.8.0.5/tcp/4001",
        "/ip4/172.17.0.1/tcp/4001",
        "/ip4/192.168.1.20/tcp/4001",
    ]


def test_without_a_default_route_every_lan_address_is_still_announced() -> None:
    # before: no default route -> 127.0.0.1, and nobody on the LAN could dial the node
    assert announced_addrs("0.0.0.0", 4001, [LO, ETH], default_ip=None) == [
        "/ip4/192.168.1.20/tcp/4001"
    ]


def test_loopback_only_when_there_is_nothing_else() -> None:
    assert announced_addrs("0.0.0.0", 4001, [LO]) == ["/ip4/127.0.0.1/tcp/4001"]
    assert announced_addrs("0.0.0.0", 4001, []) == ["/ip4/127.0.0.1/tcp/4001"]


def test_link_local_goes_after_routable_addresses() -> None:
    got = announced_addrs("0.0.0.0", 4001, [LINK_LOCAL, ETH])
    assert got == ["/ip4/192.168.1.20/tcp/4001", "/ip4/169.254.7.7/tcp/4001"]


def test_announce_comes_first_and_observed_after_the_interfaces() -> None:
    got = announced_addrs(
        "0.0.0.0",
        4001,
        [LO, ETH],
        observed=["198.51.100.4", "192.168.1.20", "127.0.0.1", "bogus", "198.51.100.5", "x"],
        extra=["/ip4/203.0.113.9/tcp/443"],
    )
    assert got == [
        "/ip4/203.0.113.9/tcp/443",
        "/ip4/192.168.1.20/tcp/4001",
        "/ip4/198.51.100.4/tcp/4001",  # an observed IP gets our listen port
    ]  # only the first two observations count; an interface's own IP is not repeated


def test_a_concrete_listen_address_is_announced_as_it_is() -> None:
    assert announced_addrs("127.0.0.1", 5000, [LO, ETH]) == ["/ip4/127.0.0.1/tcp/5000"]
    assert announced_addrs("192.168.1.20", 5000, [LO, ETH], extra=["/ip4/203.0.113.9/tcp/1"]) == [
        "/ip4/203.0.113.9/tcp/1",
        "/ip4/192.168.1.20/tcp/5000",
    ]


def test_nothing_is_announced_before_listening_and_the_list_is_capped() -> None:
    assert announced_addrs("0.0.0.0", 0, [ETH], extra=["/ip4/203.0.113.9/tcp/1"]) == []
    many = [Interface.of(f"veth{i}", f"10.{i}.0.1/24") for i in range(40)]
    assert len(announced_addrs("0.0.0.0", 4001, many)) == MAX_PEER_ADDRS


def test_announce_flag_values_are_validated() -> None:
    assert parse_announce(" /ip4/203.0.113.9/tcp/443 ") == "/ip4/203.0.113.9/tcp/443"
    for bad in ("/ip4/0.0.0.0/tcp/1", "203.0.113.9:443", f"/ip4/1.2.3.4/tcp/1/p2p/{PEER}"):
        with pytest.raises(AddressError):
            parse_announce(bad)


def test_the_startup_line_and_the_loopback_warning() -> None:
    [(level, line)] = startup_notes("0.0.0.0", 4001, ["/ip4/192.168.1.20/tcp/4001/p2p/X"])
    assert level == logging.INFO
    assert line == "listening on 0.0.0.0:4001; announcing /ip4/192.168.1.20/tcp/4001/p2p/X"
    notes = startup_notes("0.0.0.0", 4001, ["/ip4/127.0.0.1/tcp/4001/p2p/X"])
    assert [lvl for lvl, _ in notes] == [logging.INFO, logging.WARNING]
    assert "only address to announce is loopback" in notes[1][1]
    [(_, line)] = startup_notes("127.0.0.1", 4001, ["/ip4/127.0.0.1/tcp/4001/p2p/X"])
    assert "this machine only" in line  # asked for loopback: a hint, not a warning


def test_local_interfaces_lists_loopback() -> None:
    assert any(i.ip.is_loopback for i in local_interfaces())


# -- in which order a peer's addresses are dialed ----------------------------------------------


def test_same_subnet_first_then_the_peers_order_then_loopback() -> None:
    peer = [a("203.0.113.9"), a("127.0.0.1"), a("10.99.0.3"), a("192.168.1.33")]
    got = dial_order(peer, [LO, ETH])
    assert got == [a("192.168.1.33"), a("203.0.113.9"), a("10.99.0.3"), a("127.0.0.1")]


def test_loopback_first_when_the_peer_is_on_this_host() -> None:
    peer = [a("192.168.1.20", 4002), a("127.0.0.1", 4002)]  # it shares our eth0 address
    assert dial_order(peer, [LO, ETH]) == [a("127.0.0.1", 4002), a("192.168.1.20", 4002)]


def test_another_links_link_local_address_is_skipped() -> None:
    assert dial_order([a("169.254.1.1"), a("192.168.1.33")], [LO, ETH]) == [a("192.168.1.33")]
    assert dial_order([a("169.254.1.1")], [LO, LINK_LOCAL]) == [a("169.254.1.1")]


def test_memory_puts_what_worked_first_and_what_failed_last() -> None:
    peer = [a("192.168.1.33"), a("192.168.1.34"), a("203.0.113.9")]
    memory = DialMemory(failed_for_s=60.0)
    memory.failed(PEER, a("192.168.1.33"), now=100.0)
    assert memory.order(PEER, peer, [ETH], now=110.0) == [
        a("192.168.1.34"),
        a("192.168.1.33"),
        a("203.0.113.9"),
    ]
    assert memory.order(PEER, peer, [ETH], now=161.0)[0] == a("192.168.1.33")  # forgiven
    memory.worked(PEER, a("203.0.113.9"))
    assert memory.address_of(PEER) == a("203.0.113.9")
    assert memory.order(PEER, peer, [ETH], now=110.0)[0] == a("203.0.113.9")
    memory.failed(PEER, a("203.0.113.9"), now=120.0)  # it stopped working
    assert memory.address_of(PEER) is None


def test_memory_is_bounded() -> None:
    memory = DialMemory(max_peers=3)
    for i in range(10):
        memory.worked(f"peer{i}", a("192.168.1.33"))
        memory.failed(f"peer{i}", a("192.168.1.34"), now=float(i))
    assert memory.address_of("peer0") is None
    assert memory.address_of("peer9") == a("192.168.1.33")
    assert len(memory._failed) <= 3 * MAX_PEER_ADDRS


def test_the_dial_budget_allows_a_burst_then_paces() -> None:
    budget = DialBudget(rate=4.0, burst=8)
    assert [budget.wait_s(0.0) for _ in range(8)] == [0.0] * 8
    assert budget.wait_s(0.0) == pytest.approx(0.25)
    assert budget.wait_s(0.0) == pytest.approx(0.5)  # queued behind the previous one
    assert budget.wait_s(10.0) == 0.0  # refilled (up to the burst)


def test_the_bootstrap_adds_where_a_peers_connection_comes_from() -> None:
    own = [f"/ip4/192.168.1.33/tcp/4001/p2p/{PEER}"]
    assert with_seen_at(own, PEER, "198.51.100.7") == [
        *own,
        f"/ip4/198.51.100.7/tcp/4001/p2p/{PEER}",
    ]
    assert with_seen_at(own, PEER, "192.168.1.33") == own  # nothing new
    assert with_seen_at(own, PEER, "127.0.0.1") == own  # same host as the bootstrap: no use
    assert with_seen_at(own, PEER, "") == own
    assert with_seen_at([], PEER, "198.51.100.7") == []  # no port to pair it with


def test_a_peer_nothing_of_which_answered_is_left_alone_for_a_while() -> None:
    memory = DialMemory()
    assert memory.may_dial(PEER, now=0.0)
    assert memory.unreachable(PEER, now=0.0) == 30.0
    assert not memory.may_dial(PEER, now=29.0)  # re-announcing itself does not help
    assert memory.may_dial(PEER, now=30.0)
    assert memory.unreachable(PEER, now=30.0) == 60.0  # doubling...
    for _ in range(10):
        last = memory.unreachable(PEER, now=100.0)
    assert last == 600.0  # ...up to a cap
    memory.worked(PEER, a("192.168.1.33"))
    assert memory.may_dial(PEER, now=100.0)
