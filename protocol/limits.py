"""What a node holds against a peer: rate limits, strikes and blocks, arrival caps, topic rules.

Theory of operation
-------------------
The hub filters, it does not judge (ARCHITECTURE §11). Everything here is bookkeeping with the
clock passed in (seconds, monotonic), so the rules are testable without a network:

- :class:`TokenBucket`: ``rate`` tokens a second up to ``burst``; one message costs one token.
  A peer over its rate has its messages dropped (and counted), not queued.
- :class:`Strikes`: every invalid message is a strike; ``threshold`` strikes within ``window``
  seconds block the peer for ``block_s`` (the node disconnects it and refuses it until then).
  A block is for a while, not forever: keys are free, so a permanent ban list only grows.
- :class:`Arrivals`: at most ``per_ip`` connections from one IP address, and at most
  ``per_minute`` peers the node has not seen before in any 60 s.
- :func:`topic_refusal`: a subscription's name and a peer's topic count are checked where they
  enter, so no later step (the bootmesh, a relay) meets a topic it cannot handle.

Memory stays bounded: every per-peer table forgets its least recently used entries past
``max_peers`` (a forgotten peer starts fresh, which only ever favours it a little).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from protocol.wire import MAX_MESH_PEERS, MAX_MESH_TOPICS, MAX_TOPIC_CHARS, MESH_TOPIC

__all__ = [
    "MAX_TOPICS_PER_PEER",
    "MAX_TOPIC_CHARS",
    "Arrivals",
    "Strikes",
    "TokenBucket",
    "fit_bootmesh",
    "topic_refusal",
]

# A provider is on swarm/mesh plus two topics per session it is in (task and leader topic), and
# a gateway leads a few dozen sessions at once: 64 leaves room for all of that and keeps the
# bootmesh (at most 256 topics) from being filled by one peer.
MAX_TOPICS_PER_PEER = 64

K = TypeVar("K")
V = TypeVar("V")


class _Lru(OrderedDict[K, V], Generic[K, V]):
    """An ordered dict that drops its oldest entry past ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def touch(self, key: K, value: V) -> V:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)
        return value


@dataclass
class TokenBucket:
    """Per-peer token buckets: :meth:`allow` spends one token of ``peer``'s bucket."""

    rate: float  # tokens per second (0 or less: unlimited)
    burst: float
    max_peers: int = 10_000

    def __post_init__(self) -> None:
        if self.burst < 1 and self.rate > 0:
            raise ValueError("burst must be at least 1")
        self._buckets: _Lru[bytes, tuple[float, float]] = _Lru(self.max_peers)

    def allow(self, peer: bytes, now: float, cost: float = 1.0) -> bool:
        if self.rate <= 0:
            return True
        tokens, last = self._buckets.get(peer, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate)
        if tokens < cost:
            self._buckets.touch(peer, (tokens, now))
            return False
        self._buckets.touch(peer, (tokens - cost, now))
        return True


@dataclass
class Strikes:
    """Invalid messages per peer; too many within ``window`` seconds block it for ``block_s``."""

    threshold: int = 50
    window: float = 10.0
    block_s: float = 300.0
    max_peers: int = 10_000

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.window <= 0 or self.block_s < 0:
            raise ValueError("threshold must be >= 1, window > 0, block_s >= 0")
        self._recent: _Lru[bytes, deque[float]] = _Lru(self.max_peers)
        self._blocked: _Lru[bytes, float] = _Lru(self.max_peers)

    def strike(self, peer: bytes, now: float) -> bool:
        """Count one invalid message; True when this strike blocks the peer (once per block)."""
        if self.blocked(peer, now):
            return False
        times = self._recent.get(peer) or deque()
        times.append(now)
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.threshold:
            self._recent.pop(peer, None)
            self._blocked.touch(peer, now + self.block_s)
            return True
        self._recent.touch(peer, times)
        return False

    def blocked(self, peer: bytes, now: float) -> bool:
        until = self._blocked.get(peer)
        if until is None:
            return False
        if now >= until:
            del self._blocked[peer]
            return False
        return True

    def blocked_until(self, peer: bytes) -> float | None:
        return self._blocked.get(peer)

    def unblock(self, peer: bytes) -> None:
        self._blocked.pop(peer, None)
        self._recent.pop(peer, None)


@dataclass
class Arrivals:
    """Connection caps: per IP address, and new (never seen) peers per minute."""

    per_ip: int = 8  # 0: no cap
    per_minute: int = 60  # 0: no cap
    max_peers: int = 100_000

    def __post_init__(self) -> None:
        if self.per_ip < 0 or self.per_minute < 0:
            raise ValueError("caps must be >= 0 (0: no cap)")
        self._by_ip: dict[str, set[bytes]] = {}
        self._ip_of: dict[bytes, str] = {}
        self._seen: _Lru[bytes, None] = _Lru(self.max_peers)
        self._new: deque[float] = deque()

    def admit(self, peer: bytes, ip: str, now: float) -> str | None:
        """Record a connection from ``peer`` at ``ip``; None if admitted, else why not."""
        if peer in self._ip_of:
            return None  # already connected (a second stream): nothing new
        peers = self._by_ip.get(ip, set())
        if self.per_ip and ip and len(peers) >= self.per_ip:
            return f"{len(peers)} connections from {ip} already (cap {self.per_ip})"
        if peer not in self._seen:
            while self._new and self._new[0] <= now - 60.0:
                self._new.popleft()
            if self.per_minute and len(self._new) >= self.per_minute:
                return f"{len(self._new)} new peers in the last minute (cap {self.per_minute})"
            self._new.append(now)
        self._seen.touch(peer, None)
        self._by_ip.setdefault(ip, set()).add(peer)
        self._ip_of[peer] = ip
        return None

    def left(self, peer: bytes) -> None:
        ip = self._ip_of.pop(peer, None)
        if ip is None:
            return
        peers = self._by_ip.get(ip)
        if peers is not None:
            peers.discard(peer)
            if not peers:
                del self._by_ip[ip]

    def connections(self, ip: str) -> int:
        return len(self._by_ip.get(ip, ()))

    def connected(self, peer: bytes) -> bool:
        return peer in self._ip_of

    def seen(self, peer: bytes) -> bool:
        """Admitted at some time (bounded memory: the oldest are forgotten first)."""
        return peer in self._seen


def topic_refusal(
    topic: str,
    peer_topics: int,
    *,
    max_chars: int = MAX_TOPIC_CHARS,
    max_topics: int = MAX_TOPICS_PER_PEER,
) -> str | None:
    """Why a subscription to ``topic`` by a peer already on ``peer_topics`` topics is refused
    (a reason code), or None to accept it."""
    if not topic or len(topic) > max_chars or any(c.isspace() or ord(c) < 32 for c in topic):
        return "bad_topic"
    if peer_topics >= max_topics:
        return "too_many_topics"
    return None


# What a bootmesh may take of an envelope (MAX_ENVELOPE_BYTES is 256 KiB): room for the rest.
BOOTMESH_BUDGET_BYTES = 200 * 1024
_PEER_ID_COST = 40  # 38 bytes of peer ID + its msgpack header


def fit_bootmesh(
    view: Mapping[str, Sequence[bytes]],
    *,
    max_topics: int = MAX_MESH_TOPICS,
    max_peers: int = MAX_MESH_PEERS,
    budget: int = BOOTMESH_BUDGET_BYTES,
    first: str = MESH_TOPIC,
) -> tuple[dict[str, tuple[bytes, ...]], int]:
    """The part of a topic -> peers map that fits one bootmesh message, and how many topics were
    left out. ``first`` (swarm/mesh: who is online) goes in first, then the topics with the most
    peers; names that could never be valid are left out (and counted); each topic's peers are
    cut at ``max_peers``."""
    order = sorted(view, key=lambda t: (t != first, -len(view[t]), t))
    out: dict[str, tuple[bytes, ...]] = {}
    used = 16
    for topic in order:
        peers = tuple(view[topic])[:max_peers]
        cost = len(topic.encode("utf-8", "replace")) + 8 + _PEER_ID_COST * len(peers)
        if (
            len(out) >= max_topics
            or used + cost > budget
            or topic_refusal(topic, 0, max_chars=MAX_TOPIC_CHARS) is not None
        ):
            continue
        out[topic] = peers
        used += cost
    return out, len(view) - len(out)
