"""The network side's filter: what a peer may send and subscribe to, decided before anything else.

Every node checks subscriptions where they enter (a name too long, or past the per-peer topic
cap, is refused and counted: no later step, such as the bootmesh, ever meets them). The hub
(the bootstrap, through which every leaf sends) also filters messages *before it relays them*,
in this order, cheapest first:

1. the forwarder is blocked                                   -> ``blocked``
2. the forwarder is over its rate (token bucket)              -> ``rate_limited``
3. origin binding: a leaf's messages must originate from that leaf (pubsub ``from`` equals the
   connection's peer); only configured relays forward others' -> ``foreign_origin``. One
   exception keeps the swarm whole: a peer the hub knows but that is cut off from it right now
   floods over its direct links, and its neighbours pass its (signed) messages on to the hub.
   A message "from" a peer the hub never saw (a fresh key) never passes.
4. closed swarm: the origin is no member                      -> ``not_member``
5. size, decoding, envelope signature (``open_envelope``) and the replay guard -> the
   envelope's own reason (``oversize``, ``not_msgpack``, ``bad_signature``, ``replay``...)

Each drop is counted per reason and per peer; every drop except ``blocked`` and
``unknown_version`` (a peer on another protocol version is no attacker) is a *strike*, and too
many strikes in a short time block the peer for a while: the host disconnects it and refuses it
until then. Connections are capped per IP address and new peers per minute.

This module imports no libp2p and no trio: the host calls it with bytes, from trio, and acts on
its answers (drop, disconnect). The clock is passed in (``now``) for tests.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from protocol.envelope import MAX_ENVELOPE_BYTES, ReplayGuard, open_envelope
from protocol.errors import ProtocolError
from protocol.identity import short_id
from protocol.limits import MAX_TOPICS_PER_PEER, Arrivals, Strikes, TokenBucket, topic_refusal
from protocol.messages import MESH_TOPIC

logger = logging.getLogger(__name__)

__all__ = ["DropCounter", "GuardConfig", "NetworkGuard"]

# Plain text a console `publish`es on a session topic (never on swarm/mesh) is relayed, not
# judged: the console shows it as text. Bounded like everything else.
MAX_TEXT_BYTES = 4_096
NO_STRIKE = frozenset({"blocked", "unknown_version", "duplicate"})


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """The knobs (flags on ``rnet bootstrap``; see ``node.config``)."""

    rate: float = 200.0  # messages a second per peer (0: no limit)
    burst: float = 1_000.0
    strikes: int = 50  # invalid messages within ``strike_window_s`` before a block
    strike_window_s: float = 10.0
    block_s: float = 300.0
    max_conns_per_ip: int = 16  # 0: no cap; loopback is exempt unless ``cap_loopback``
    max_new_peers_per_min: int = 120  # 0: no cap
    cap_loopback: bool = False
    max_topics_per_peer: int = MAX_TOPICS_PER_PEER
    relays: frozenset[bytes] = frozenset()  # peers allowed to forward others' messages
    # floodsub only: gossipsub leaves forward each other's messages by design
    bind_origin: bool = True


@dataclass
class DropCounter:
    """Dropped input: total, per reason, per peer (bounded)."""

    total: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    by_peer: dict[bytes, int] = field(default_factory=dict)

    def add(self, reason: str, peer: bytes) -> int:
        self.total += 1
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        if len(self.by_peer) < 10_000 or peer in self.by_peer:
            self.by_peer[peer] = self.by_peer.get(peer, 0) + 1
        return self.total


OnDrop = Callable[[str, bytes, str, str], None]  # reason, peer, topic, detail
OnBlock = Callable[[bytes, float, str], None]  # peer, seconds, why


class NetworkGuard:
    """One node's filter (module docstring). ``hub`` turns on the message checks."""

    def __init__(
        self,
        config: GuardConfig | None = None,
        *,
        hub: bool = False,
        on_drop: OnDrop | None = None,
        on_block: OnBlock | None = None,
        is_member: Callable[[bytes], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = cfg = config or GuardConfig()
        self.hub = hub
        self.drops = DropCounter()
        self._on_drop = on_drop or (lambda reason, peer, topic, detail: None)
        self._on_block = on_block or (lambda peer, seconds, why: None)
        self.is_member = is_member  # None: an open swarm
        self._clock = clock
        self._bucket = TokenBucket(cfg.rate, cfg.burst)
        self._strikes = Strikes(cfg.strikes, cfg.strike_window_s, cfg.block_s)
        self._arrivals = Arrivals(cfg.max_conns_per_ip, cfg.max_new_peers_per_min)
        self._replay = ReplayGuard()

    # -- bookkeeping ---------------------------------------------------------------------------

    def drop(self, reason: str, peer: bytes, topic: str = "", detail: str = "") -> None:
        """Count one dropped input from ``peer``; a strike unless the reason is harmless."""
        self.drops.add(reason, peer)
        try:
            self._on_drop(reason, peer, topic, detail)
        except Exception:  # reporting must never stop filtering
            logger.exception("drop report failed")
        if reason not in NO_STRIKE and self._strikes.strike(peer, self._clock()):
            self.block(peer, f"{self.config.strikes} invalid messages (last: {reason})")

    def block(self, peer: bytes, why: str) -> None:
        seconds = self.config.block_s
        logger.warning("blocking peer %s for %.0f s: %s", _short(peer), seconds, why)
        try:
            self._on_block(peer, seconds, why)
        except Exception:
            logger.exception("blocking %s failed", _short(peer))

    def blocked(self, peer: bytes) -> bool:
        return self._strikes.blocked(peer, self._clock())

    # -- connections ---------------------------------------------------------------------------

    def admit_connection(self, peer: bytes, ip: str) -> str | None:
        """None to keep a new connection, else why it is refused (the host disconnects it)."""
        if self.blocked(peer):
            return "blocked"
        if self.is_member is not None and not self.is_member(peer):
            return "not_member"
        capped_ip = ip if (self.config.cap_loopback or not _loopback(ip)) else ""
        why = self._arrivals.admit(peer, capped_ip, self._clock())
        return None if why is None else f"conn_refused: {why}"

    def connection_closed(self, peer: bytes) -> None:
        self._arrivals.left(peer)

    # -- subscriptions -------------------------------------------------------------------------

    def admit_subscription(self, peer: bytes, topic: str, peer_topics: int) -> bool:
        reason = topic_refusal(topic, peer_topics, max_topics=self.config.max_topics_per_peer)
        if reason is None:
            return True
        self.drop(reason, peer, topic[:64], f"subscription refused ({peer_topics} topics)")
        return False

    # -- messages (the hub) --------------------------------------------------------------------

    def admit_message(
        self, forwarder: bytes, origin: bytes, topics: Iterable[str], data: bytes
    ) -> bool:
        """True to relay (and deliver) the message; False: dropped, counted, maybe a strike."""
        if not self.hub:
            return True
        topic = next(iter(topics), "")
        now = self._clock()
        if self._strikes.blocked(forwarder, now):
            self.drop("blocked", forwarder, topic)
            return False
        if not self._bucket.allow(forwarder, now):
            self.drop("rate_limited", forwarder, topic)
            return False
        if origin != forwarder and not self._may_forward(forwarder, origin, topic):
            return False
        if self.is_member is not None and not self.is_member(origin):
            self.drop("not_member", forwarder, topic)
            return False
        reason, detail = self._check_payload(origin, topic, data)
        if reason is not None:
            self.drop(reason, forwarder, topic, detail)
            return False
        return True

    def _may_forward(self, forwarder: bytes, origin: bytes, topic: str) -> bool:
        if not self.config.bind_origin or forwarder in self.config.relays:
            return True
        if not self._arrivals.seen(origin):
            self.drop("foreign_origin", forwarder, topic, f"origin {_short(origin)} never seen")
            return False
        if self._arrivals.connected(origin):
            # it sends its own messages to us; a copy passed on by a neighbour is a duplicate
            self.drop("duplicate", forwarder, topic, f"origin {_short(origin)} is connected")
            return False
        return True  # a known peer cut off from the hub (module docstring)

    def _check_payload(self, origin: bytes, topic: str, data: bytes) -> tuple[str | None, str]:
        if len(data) > MAX_ENVELOPE_BYTES:
            return "oversize", f"{len(data)} bytes"
        try:
            env = open_envelope(data, expected_sender=origin)
            self._replay.check(env)
        except ProtocolError as exc:
            console_text = topic != MESH_TOPIC and exc.reason in ("not_msgpack", "bad_type")
            if console_text and len(data) <= MAX_TEXT_BYTES and _plain_text(data):
                return None, ""
            return exc.reason, str(exc)[:200]
        return None, ""

    def oversize_rpc(self, peer: bytes, detail: str) -> None:
        """libp2p refused a frame over its size limit (and closed the stream): count it."""
        self.drop("oversize", peer, "", detail)


def _plain_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(ord(c) < 32 and c not in "\t\n\r" for c in text)


def _loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def _short(peer: bytes) -> str:
    try:
        return short_id(peer)
    except Exception:  # not a peer ID we can print: its last bytes will do for a log line
        return peer[-4:].hex()
