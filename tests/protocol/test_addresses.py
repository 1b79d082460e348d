"""What a node accepts as a peer's address (protocol/addresses.py)."""

from __future__ import annotations

import ipaddress

import pytest

from protocol.addresses import MAX_PEER_ADDRS, AddressError, DialAddr, parse_addr, peer_addrs

PEER = "12D3KooWPvoF9HfWisUgV2P7A5fq7wW2CAAqzZE45sVbKdxGRv5s"
OTHER = "12D3KooWAoHHscorxcakLzSmcDLW5vng2try1NJUesQo9J87P9LQ"


def addr(ip: str, port: int = 4001, peer: str = PEER) -> str:
    return f"/ip4/{ip}/tcp/{port}/p2p/{peer}"


def test_a_peer_address_parses_and_prints_back() -> None:
    a = parse_addr(addr("10.0.0.7"), peer_id=PEER)
    assert a == DialAddr(ipaddress.IPv4Address("10.0.0.7"), 4001, PEER)
    assert a.text() == addr("10.0.0.7")
    assert parse_addr("/ip4/203.0.113.9/tcp/443").text() == "/ip4/203.0.113.9/tcp/443"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (addr("0.0.0.0"), "wildcard"),
        (addr("224.0.0.251"), "multicast"),
        (addr("239.1.2.3"), "multicast"),
        (addr("255.255.255.255"), "reserved or broadcast"),
        (addr("240.0.0.1"), "reserved"),
        (addr("10.0.0.1", 0), "out of range"),
        (addr("10.0.0.1", 70000), "out of range"),
        ("/ip4/10.0.0.1/tcp/+80/p2p/" + PEER, "not a TCP port"),
        ("/ip4/10.0.0.1/tcp/٣/p2p/" + PEER, "not a TCP port"),  # a non-ASCII digit
        ("/ip4/010.0.0.1/tcp/80/p2p/" + PEER, "not an IPv4 address"),
        ("/ip6/::1/tcp/80/p2p/" + PEER, "is not /ip4"),
        ("/dns4/example.com/tcp/80/p2p/" + PEER, "is not /ip4"),
        ("/ip4/10.0.0.1/udp/80/p2p/" + PEER, "is not /ip4"),
        ("/ip4/10.0.0.1/tcp/80/ipfs/" + PEER, "expected /p2p/"),
        (addr("10.0.0.1", peer=OTHER), "another peer's id"),
        ("/ip4/10.0.0.1/tcp/80", "has no /p2p/"),
        (addr("10.0.0.1") + "x" * 300, "longer than"),
        (b"/ip4/10.0.0.1/tcp/80", "not a string"),
    ],
)
def test_what_is_not_a_dialable_address_of_the_peer(text: object, why: str) -> None:
    with pytest.raises(AddressError, match=why):
        parse_addr(text, peer_id=PEER)


def test_an_announce_address_carries_no_peer_id() -> None:
    with pytest.raises(AddressError, match="leave out /p2p/"):
        parse_addr(addr("203.0.113.9"))


def test_peer_addrs_keeps_the_good_ones_in_order_and_counts_the_rest() -> None:
    texts = [
        addr("10.0.0.2"),
        addr("0.0.0.0"),
        addr("10.0.0.3", peer=OTHER),
        addr("10.0.0.2"),  # a duplicate is folded, not counted as bad
        42,
        addr("127.0.0.1"),
    ]
    kept, dropped = peer_addrs(texts, PEER)
    assert [a.text() for a in kept] == [addr("10.0.0.2"), addr("127.0.0.1")]
    assert dropped == 3


def test_peer_addrs_caps_what_one_peer_can_hand_out() -> None:
    many = [addr(f"10.0.{i // 250}.{i % 250 + 1}") for i in range(1000)]
    kept, dropped = peer_addrs(many, PEER)
    assert len(kept) == MAX_PEER_ADDRS
    assert kept[0].text() == many[0]
    assert dropped == 1000 - MAX_PEER_ADDRS
