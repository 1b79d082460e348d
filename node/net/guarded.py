"""py-libp2p's pubsub with :class:`node.guard.NetworkGuard` in front (trio side).

The hooks, each on a py-libp2p 0.8.1 internal (no public API offers them):

- ``handle_subscription``: a subscription is checked (name, per-peer count) before libp2p
  records it, so a 200-character topic or a 300th topic never reaches the bootmesh;
- ``push_msg``: a message from another peer is checked by the guard (blocked, rate, origin
  binding, membership, size/decoding/signature/replay) before libp2p delivers or forwards it;
  duplicates and bad pubsub signatures, which libp2p drops silently, are counted here;
- ``continuously_read_stream``: an RPC frame libp2p refuses as too large, or one that is not
  protobuf at all, is counted (libp2p resets the stream either way) instead of vanishing or,
  for a protobuf ``DecodeError`` that libp2p does not catch, ending the stream handler with an
  exception.

:class:`ConnectionGate` applies the guard to connections (caps, blocks) for the host.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from google.protobuf.message import DecodeError
from libp2p.peer.id import ID
from libp2p.pubsub import pubsub as _pubsub_module
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.validators import signature_validator
from libp2p.utils.varint import MessageTooLarge

from node.net.guard import NetworkGuard

logger = logging.getLogger(__name__)


class GuardedPubsub(Pubsub):
    """Pubsub whose inbound subscriptions and messages pass ``self.guard`` first (if set)."""

    guard: NetworkGuard | None = None

    def handle_subscription(self, origin_id: ID, sub_message: Any) -> None:
        guard = self.guard
        if guard is not None and sub_message.subscribe:
            topic = sub_message.topicid
            if origin_id not in self.peer_topics.get(topic, ()):
                count = self._peer_subscription_count.get(origin_id, 0)
                if not guard.admit_subscription(origin_id.to_bytes(), topic, count):
                    return
        super().handle_subscription(origin_id, sub_message)

    async def push_msg(self, msg_forwarder: ID, msg: Any) -> None:
        guard = self.guard
        if guard is not None and guard.hub and msg_forwarder != self.my_id:
            forwarder = msg_forwarder.to_bytes()
            if self._is_msg_seen(msg):
                guard.drop("duplicate", forwarder, _first(msg.topicIDs))
                return
            if not guard.admit_message(forwarder, bytes(msg.from_id), msg.topicIDs, msg.data):
                return
            if not signature_validator(msg):
                guard.drop("bad_pubsub_signature", forwarder, _first(msg.topicIDs))
                return
        await super().push_msg(msg_forwarder, msg)

    async def continuously_read_stream(self, stream: Any) -> None:
        peer_id = stream.muxed_conn.peer_id
        try:
            await super().continuously_read_stream(stream)
        except DecodeError as exc:
            if self.guard is not None:
                self.guard.drop("not_protobuf", peer_id.to_bytes(), "", str(exc)[:200])
            try:
                await stream.reset()
            except Exception:
                logger.debug("resetting %s's stream failed", peer_id)
            self._handle_dead_peer(peer_id)


def _first(topics: Any) -> str:
    return next(iter(topics), "")


_guards: list[NetworkGuard] = []


def count_oversize_frames(guard: NetworkGuard) -> None:
    """Count the RPC frames libp2p refuses as over its size limit (it resets the stream and
    says nothing more). The pubsub module reads this name at call time; one process runs one
    node, so replacing it is this node's configuration, like the deepened queues."""
    _guards[:] = [guard]
    original = getattr(_pubsub_module, "_rnet_original_read", None)
    if original is None:
        original = _pubsub_module.read_varint_prefixed_bytes_limited
        _pubsub_module._rnet_original_read = original  # type: ignore[attr-defined]

    async def read_counted(stream: Any, max_length: int) -> bytes:
        try:
            return await original(stream, max_length)
        except MessageTooLarge as exc:
            for g in _guards:
                g.oversize_rpc(stream.muxed_conn.peer_id.to_bytes(), str(exc)[:200])
            raise

    _pubsub_module.read_varint_prefixed_bytes_limited = read_counted  # type: ignore[assignment]


class ConnectionGate:
    """The guard installed on a host: in front of its pubsub (above) and its connections (trio
    side): a refused connection is closed, a blocked
    peer is disconnected and its pubsub streams refused (libp2p's blacklist) until the block
    ends. ``nursery`` gives the host's nursery (None while the host is not running)."""

    def __init__(
        self,
        guard: NetworkGuard,
        pubsub: Pubsub,
        disconnect: Callable[[str], Awaitable[None]],
        nursery: Callable[[], trio.Nursery | None],
    ) -> None:
        self.guard = guard
        if isinstance(pubsub, GuardedPubsub):
            pubsub.guard = guard
        count_oversize_frames(guard)
        self._pubsub = pubsub
        self._disconnect = disconnect
        self._nursery = nursery

    def _spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        nursery = self._nursery()
        if nursery is not None:
            nursery.start_soon(fn)

    def admit(self, peer: ID, what: str, conn: Any) -> bool:
        """A connection change; False when the connection is refused (not reported on)."""
        raw = peer.to_bytes()
        if what != "connected":
            self.guard.connection_closed(raw)
            return True
        why = self.guard.admit_connection(raw, _remote_ip(conn))
        if why is None:
            return True
        self.guard.drop(why.split(":", 1)[0], raw, "", why)
        self._spawn(lambda: self._disconnect(peer.to_base58()))
        return False

    def block(self, peer: bytes, seconds: float) -> None:
        pid = ID(peer)
        self._pubsub.add_to_blacklist(pid)
        self._spawn(lambda: self._disconnect(pid.to_base58()))

        async def lift() -> None:
            await trio.sleep(seconds)
            self._pubsub.remove_from_blacklist(pid)

        self._spawn(lift)


def _remote_ip(conn: Any) -> str:
    try:
        remote = conn.muxed_conn.secured_conn.get_remote_address()
        return str(remote[0]) if remote else ""
    except Exception:  # a connection without a socket address (tests, other transports)
        return ""
