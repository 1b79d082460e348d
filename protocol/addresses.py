"""Peer addresses as they travel in presence and in the bootstrap's peer list: what a node accepts.

A node tells others where it can be dialed as ``/ip4/A/tcp/P/p2p/ID`` strings. Those strings come
from peers, so they are input like any other, and a node that dials them on a peer's word must
not become a tool for scanning or flooding somebody else. So a node keeps only addresses that

- name the peer that claims them (``/p2p/`` equals the sender's id: a peer cannot make others
  dial a different identity, and a dial to a wrong host fails at the Noise handshake);
- are a real unicast IPv4 endpoint: no ``0.0.0.0`` (pitfall 9), no multicast, no broadcast or
  reserved space, a port in 1..65535;
- fit the caps: at most :data:`MAX_PEER_ADDRS` per peer, each at most :data:`MAX_ADDR_CHARS`.

Everything else is dropped (and counted by the caller); a presence with some bad addresses still
counts for the good ones. Which of the kept addresses are dialed, in what order and how often is
the node's dial policy (``node.addresses``); this module only says what is well-formed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "MAX_ADDR_CHARS",
    "MAX_PEER_ADDRS",
    "AddressError",
    "DialAddr",
    "parse_addr",
    "peer_addrs",
]

MAX_PEER_ADDRS = 8
MAX_ADDR_CHARS = 256
# Looked at per peer at most: a long list is not walked to the end (the rest counts as dropped).
MAX_EXAMINED = 4 * MAX_PEER_ADDRS


class AddressError(ValueError):
    """Not a dialable address; the message says why (user-facing for ``--announce``)."""


@dataclass(frozen=True, slots=True)
class DialAddr:
    """One TCP endpoint of a peer: ``/ip4/<ip>/tcp/<port>[/p2p/<peer_id>]``."""

    ip: ipaddress.IPv4Address
    port: int
    peer_id: str = ""  # base58; empty for our own addresses before the id is appended

    @property
    def is_loopback(self) -> bool:
        return self.ip.is_loopback

    @property
    def is_link_local(self) -> bool:
        return self.ip.is_link_local

    def text(self) -> str:
        base = f"/ip4/{self.ip}/tcp/{self.port}"
        return f"{base}/p2p/{self.peer_id}" if self.peer_id else base


def parse_addr(text: object, *, peer_id: str | None = None) -> DialAddr:
    """Parse one address; :class:`AddressError` when it is not a dialable unicast endpoint.

    ``peer_id``: the id the address must name (``/p2p/<peer_id>`` required); ``None``: the
    address must have no ``/p2p/`` part (an operator's ``--announce``: ours is appended).
    """
    if not isinstance(text, str):
        raise AddressError(f"not a string: {type(text).__name__}")
    if len(text) > MAX_ADDR_CHARS:
        raise AddressError(f"longer than {MAX_ADDR_CHARS} characters")
    parts = text.split("/")
    if parts[0] != "" or len(parts) not in (5, 7) or parts[1] != "ip4" or parts[3] != "tcp":
        raise AddressError(f"{text!r} is not /ip4/A.B.C.D/tcp/PORT[/p2p/PEER_ID]")
    try:
        ip = ipaddress.IPv4Address(parts[2])
    except ValueError:
        raise AddressError(f"{parts[2]!r} is not an IPv4 address") from None
    if ip.is_unspecified:
        raise AddressError(f"{ip} is a wildcard, not an address anyone can dial")
    if ip.is_multicast:
        raise AddressError(f"{ip} is a multicast address")
    if ip.is_reserved:  # 240.0.0.0/4, the limited broadcast 255.255.255.255 included
        raise AddressError(f"{ip} is reserved or broadcast")
    port_text = parts[4]
    if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        raise AddressError(f"{port_text!r} is not a TCP port")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise AddressError(f"port {port} out of range 1-65535")
    if len(parts) == 7:
        if parts[5] != "p2p":
            raise AddressError(f"{text!r}: expected /p2p/PEER_ID after the port")
        if peer_id is None:
            raise AddressError(f"{text!r}: leave out /p2p/...; the node's own id is appended")
        if parts[6] != peer_id:
            raise AddressError("names another peer's id")
        return DialAddr(ip, port, peer_id)
    if peer_id is not None:
        raise AddressError(f"{text!r} has no /p2p/PEER_ID")
    return DialAddr(ip, port)


def peer_addrs(texts: Sequence[object], peer_id: str) -> tuple[tuple[DialAddr, ...], int]:
    """The well-formed addresses of ``peer_id`` among ``texts`` (first ones win, duplicates
    folded, at most :data:`MAX_PEER_ADDRS`) and how many were dropped."""
    kept: list[DialAddr] = []
    dropped = max(0, len(texts) - MAX_EXAMINED)
    for text in texts[:MAX_EXAMINED]:
        try:
            addr = parse_addr(text, peer_id=peer_id)
        except AddressError:
            dropped += 1
            continue
        if addr in kept:
            continue
        if len(kept) >= MAX_PEER_ADDRS:
            dropped += 1
            continue
        kept.append(addr)
    return tuple(kept), dropped
