"""The runtime's defences, built for one node: its network guard (``node.net.guard``: what a
peer may send and subscribe to, checked before anything else) and its view of a closed swarm
(``node.runtime.members``). Dropped input becomes counted, rate-limited ``rejected`` reports
through the topic router (``runtime.reject``)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from node.net.addrs import parse_p2p_maddr
from node.net.guard import NetworkGuard
from node.runtime.members import Membership
from protocol.identity import peer_id_to_str

if TYPE_CHECKING:
    from node.runtime.node import NodeRuntime

logger = logging.getLogger(__name__)

__all__ = ["Membership", "make_guard", "make_membership"]


def make_membership(runtime: NodeRuntime, me: bytes) -> Membership:
    """The bootstrap keeps the member list (and signs with its own key); every other node
    checks certificates against its bootstrap's key."""
    if runtime.is_hub:
        return Membership(runtime.members_mode, me, me, runtime.config.data_dir)
    boot = runtime.config.bootstrap
    issuer = parse_p2p_maddr(boot)[0].to_bytes() if boot else None
    return Membership(runtime.members_mode, me, issuer, None)


def make_guard(runtime: NodeRuntime) -> NetworkGuard:
    """The node's guard: message checks on the hub only (leaves get everything through the
    hub, whose rate they must not limit); origins bound only under floodsub (gossipsub leaves
    forward each other's messages by design)."""
    book = runtime.membership.book

    def dropped(reason: str, peer: bytes, topic: str, detail: str) -> None:
        try:
            sender = peer_id_to_str(peer)
        except Exception:  # not a peer ID shape: still counted, under its hex
            sender = peer.hex()[:64]
        runtime.reject(reason, sender, topic, detail)

    def block(peer: bytes, seconds: float, why: str) -> None:
        host = runtime.host_or_none
        if host is not None and host.gate is not None:
            host.gate.block(peer, seconds)  # disconnected, refused for a while

    return NetworkGuard(
        replace(runtime.guard_config, bind_origin=runtime.config.router == "floodsub"),
        hub=runtime.is_hub,
        on_drop=dropped,
        on_block=block,
        is_member=book.is_member if book is not None and runtime.membership.closed else None,
    )
