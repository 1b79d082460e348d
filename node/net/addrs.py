"""Peer addresses: parsing multiaddrs and peer IDs, a port check. (What to announce:
:mod:`node.net.announcer`; what to accept from peers and how to dial them: :mod:`node.net.reach`.)"""

from __future__ import annotations

import socket

import multiaddr
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr

from node.errors import HostError


def parse_p2p_maddr(text: str) -> tuple[ID, list[multiaddr.Multiaddr]]:
    """``/ip4/../tcp/../p2p/<id>`` -> (peer ID, addrs); HostError with a clear message if not."""
    try:
        info = info_from_p2p_addr(multiaddr.Multiaddr(text))
    except Exception as exc:
        raise HostError(
            f"not a peer multiaddr: {text!r} (expected /ip4/HOST/tcp/PORT/p2p/PEER_ID)"
        ) from exc
    return info.peer_id, list(info.addrs)


def parse_peer_id(text: str) -> ID:
    try:
        return ID.from_base58(text)
    except Exception as exc:
        raise HostError(f"not a peer id: {text!r}") from exc


def check_port_free(host: str, port: int) -> None:
    """Raise OSError if ``host:port`` is taken.

    py-libp2p listens with SO_REUSEPORT (for hole punching), so a second node on the same fixed
    port would bind too and the kernel would split incoming connections between the two; a plain
    bind (without SO_REUSEPORT) fails in that case and tells us.
    """
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR: a restarted node may rebind over its old TIME_WAIT connections; an
        # active listener still makes the bind fail.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host or "0.0.0.0", port))
