"""The provider role: join the swarm through the bootstrap and stay joined.

- Its own reconnect loop dials the bootstrap (py-libp2p drops a bootstrap that was down at start
  and blocks a failed peer for 60 s): retries every <= 1 s, so a bootstrap that starts later or
  restarts is found again within about a second of being back.
- Ready as soon as it is connected and has seen the bootstrap subscribed to ``swarm/mesh`` (the
  moment its publishes can reach the swarm) — no settle sleep.
- On every (re)connection it announces its presence and asks the bootstrap for the peer list,
  then dials a bounded number of the providers it learned of, so the mesh is not only a star
  (at the addresses they announced, best first: :mod:`node.net.dialer`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, ClassVar

import trio

from node.config import DEMO_BOOTSTRAP_NODE
from node.errors import DialError, HostError, PeerIdMismatch, RuntimeError_
from node.net.dialer import DirectDialer
from node.runtime.peers import PeerRecord
from protocol.messages import MAX_SLOTS, MESH_TOPIC

if TYPE_CHECKING:
    from node.runtime.node import NodeRuntime

logger = logging.getLogger(__name__)

RETRY_MIN_S = 0.2
RETRY_MAX_S = 1.0
SUBSCRIBE_TIMEOUT_S = 5.0
QUIET_START_S = 2.0  # an unreachable bootstrap is reported once it stayed so this long
STATUS_EVERY_S = 10.0  # while the bootstrap is unreachable, one status line this often
HEAL_GRACE_S = 2.5  # > the bootstrap's bootmesh interval (1 s) + debounce: no false alarms


class ProviderRole:
    is_hub: ClassVar[bool] = False

    def __init__(self, runtime: NodeRuntime) -> None:
        # libp2p is imported by the runtime's start (off the loop), before roles are built
        from node.net.addrs import parse_p2p_maddr

        self.rt = runtime
        self.bootstrap_maddr = runtime.config.bootstrap or ""
        pid, _ = parse_p2p_maddr(self.bootstrap_maddr)
        self.bootstrap_id = pid.to_base58()
        runtime.set_bootstrap_id(self.bootstrap_id)
        runtime.note_peer(self.bootstrap_id, name="bootstrap", role="bootstrap")
        self._refetch = trio.Event()
        self._heal = trio.Event()
        self._lost = trio.Event()
        self._dialing: set[str] = set()
        self._dialer = DirectDialer(runtime.host)

    async def start(self) -> None:
        if self.bootstrap_id == self.rt.peer_id_str:
            raise RuntimeError_(
                "this node's key is the bootstrap's key: give the provider its own data dir"
            )
        if self.bootstrap_maddr == DEMO_BOOTSTRAP_NODE:
            logger.info(
                "dialing the demo bootstrap at %s (the default when neither --bootstrap nor "
                "BOOTSTRAP_NODE in the environment or .env is set): run `rnet bootstrap` on "
                "this machine, or set BOOTSTRAP_NODE to your swarm's (see .env.example)",
                _where(self.bootstrap_maddr),
            )
        self.rt.nursery.start_soon(self._bootstrap_loop)
        self.rt.nursery.start_soon(self._refetch_loop)
        self.rt.nursery.start_soon(self._heal_loop)

    def _missing_from_bootmesh(self) -> list[str]:
        me = self.rt.peer_id_str
        bootmesh = self.rt.bootmesh()
        return [t for t in self.rt.topics() if me not in bootmesh.get(t, ())]

    async def _heal_loop(self) -> None:
        # The bootstrap's map should list us on every topic we joined. If it still does not after
        # a grace period, the hub lost our subscriptions (see SwarmHost.reannounce_to): resend.
        while True:
            await self._heal.wait()
            await trio.sleep(HEAL_GRACE_S)
            self._heal = trio.Event()
            missing = self._missing_from_bootmesh()
            if missing and self.rt.host.is_connected(self.bootstrap_id):
                logger.info("bootstrap does not list us on %s; re-announcing", ", ".join(missing))
                self.rt.host.reannounce_to(self.bootstrap_id)

    async def _refetch_loop(self) -> None:
        # A presence can miss us (the hub's stream to us was still opening when it relayed it);
        # the bootstrap's peer list is the reliable fallback, asked for when the bootmesh names a
        # peer we know nothing about.
        while True:
            await self._refetch.wait()
            await trio.sleep(0.2)  # batch a burst of joins into one request
            self._refetch = trio.Event()
            if self.rt.host.is_connected(self.bootstrap_id):
                await self._fetch_peer_list()

    async def _bootstrap_loop(self) -> None:
        host = self.rt.host
        delay = RETRY_MIN_S
        report = DialReport(_where(self.bootstrap_maddr))
        while True:
            if not host.is_connected(self.bootstrap_id):
                try:
                    await host.connect(self.bootstrap_maddr, timeout=3.0)
                except HostError as exc:
                    report.failed(exc, trio.current_time(), delay)
                    await trio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_S)
                    continue
            report.connected()
            delay = RETRY_MIN_S
            self._lost = trio.Event()
            try:
                await host.wait_for_subscription(self.bootstrap_id, MESH_TOPIC, SUBSCRIBE_TIMEOUT_S)
            except trio.TooSlowError:
                if host.is_connected(self.bootstrap_id):
                    logger.warning("bootstrap did not subscribe to %s; reconnecting", MESH_TOPIC)
                    await host.disconnect(self.bootstrap_id)
                continue
            if self.rt.membership.closed:
                # a closed swarm: our certificate (and the members') first, so our presence
                # carries it and nobody sees a message of ours before knowing we are a member
                await self._fetch_peer_list()
            self.rt.mark_ready()
            await self.rt.publish_presence()
            await self._fetch_peer_list()
            if host.is_connected(self.bootstrap_id):
                await self._lost.wait()
            logger.warning("lost the bootstrap; reconnecting")

    async def _fetch_peer_list(self) -> None:
        try:
            reply = await self.rt.host.peer_list.request(self.bootstrap_id)
        except HostError as exc:
            logger.info("%s", exc)
            return
        if not isinstance(reply, dict):
            logger.warning("bootstrap sent a peer list that is not a map; ignored")
            return
        if isinstance(reply.get("cert"), str) and self.rt.membership.set_own(reply["cert"]):
            # our certificate (closed swarms): announced in our presence from now on
            self.rt.set_presence(self.rt.model, self.rt.backend, self.rt.status)
        topics = reply.get("topics")
        if isinstance(topics, dict) and all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(p, str) for p in v)
            for k, v in topics.items()
        ):
            self.rt.set_bootmesh({k: sorted(v) for k, v in topics.items()})
        for entry in reply.get("peers") or []:
            if not isinstance(entry, dict):
                continue
            peer, addrs = entry.get("peer_id"), entry.get("addrs")
            if not isinstance(peer, str) or not isinstance(addrs, list):
                continue
            if isinstance(entry.get("cert"), str):
                self.rt.membership.listed(peer, entry["cert"])
            online = entry.get("online_s")
            online_s = float(online) if isinstance(online, int | float) and online >= 0 else 0.0
            info = {k: entry.get(k) for k in ("name", "role", "model", "backend")}
            slots = {k: entry.get(k, 0) for k in ("slots", "slots_used")}
            if not all(type(v) is int and 0 <= v <= MAX_SLOTS for v in slots.values()):
                slots = {}
            caps = entry.get("capabilities") or []
            caps = tuple(c for c in caps if isinstance(c, str) and len(c) <= 32)[:8]
            if all(isinstance(v, str) and len(v) <= 128 for v in info.values()):
                self.rt.directory.note_peer(
                    peer,
                    addrs=tuple(addrs),
                    capabilities=caps,
                    online_s=online_s,
                    **info,
                    **slots,
                )
            self._maybe_dial(peer, addrs)

    # -- dialing learned peers (bounded) --------------------------------------------------------

    def _direct_provider_count(self) -> int:
        host = self.rt.host
        return sum(1 for p in host.connected_peers() if p != self.bootstrap_id)

    def _dial_targets(self, candidate: str) -> list[str]:
        """The ``max_dials`` known providers whose ids follow ours: every node dials its nearest
        successors, so no node collects everyone's dials (in-degree stays about ``max_dials``)."""
        me = self.rt.peer_id_str
        known = {p.peer_id for p in self.rt.provider_peers()} | {candidate}
        return sorted(p for p in known if p > me)[: self.rt.config.max_dials]

    def _maybe_dial(self, peer: str, addrs: list[str]) -> None:
        rt = self.rt
        if (
            rt.config.max_dials <= 0
            or peer in (rt.peer_id_str, self.bootstrap_id)
            or peer in self._dialing
            or rt.host.is_connected(peer)
            # one side of each pair dials, so two providers never race to dial each other
            or peer < rt.peer_id_str
            or self._direct_provider_count() + len(self._dialing) >= rt.config.max_dials
            or peer not in self._dial_targets(peer)
        ):
            return
        if not addrs:
            return
        self._dialing.add(peer)
        rt.nursery.start_soon(self._dial, peer, addrs)

    async def _dial(self, peer: str, addrs: list[str]) -> None:
        try:
            await self._dialer.dial(peer, addrs)
        finally:
            self._dialing.discard(peer)

    # -- runtime callbacks -------------------------------------------------------------------

    def on_connection(self, peer: str, what: str) -> None:
        if peer == self.bootstrap_id and what == "disconnected":
            self._lost.set()
            # While the hub was there our subscriptions went to it alone; now the direct links
            # carry the messages (plain floodsub), so tell those peers what we are on.
            for other in self.rt.host.connected_peers():
                if other != peer:
                    self.rt.host.reannounce_to(other)

    def on_presence(self, peer: str, record: PeerRecord) -> None:
        if record.role == "provider":
            self._maybe_dial(peer, list(record.addrs))

    def on_bootmesh(self, topics: dict[str, list[str]]) -> None:
        unknown = [
            p
            for p in topics.get(MESH_TOPIC, ())
            if p != self.rt.peer_id_str and not self.rt.has_presence(p)
        ]
        if unknown:
            self._refetch.set()
        if self._missing_from_bootmesh():
            self._heal.set()

    def on_subscriptions(self) -> None:
        pass

    async def on_topology(self) -> None:
        pass


class DialReport:
    """What the operator hears while the bootstrap cannot be reached: a wrong peer ID once (per
    ID, not per retry), "unreachable" once it lasted ``QUIET_START_S`` (a local swarm's bootstrap
    may be a moment from listening), then a status line every ``STATUS_EVERY_S`` with the
    attempts so far and the next one."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.failures = 0
        self._first = 0.0
        self._said: float | None = None
        self._wrong_ids: set[str] = set()

    def failed(self, exc: HostError, now: float, next_in: float) -> None:
        self.failures += 1
        if self.failures == 1:
            self._first = now
        if isinstance(exc, PeerIdMismatch):
            if exc.actual not in self._wrong_ids:
                self._wrong_ids.add(exc.actual)
                logger.error(
                    "the bootstrap at %s is %s, expected %s: check BOOTSTRAP_NODE (the line "
                    "`rnet keygen` printed with its BOOTSTRAP_KEY); retrying",
                    self.where,
                    exc.actual,
                    exc.expected,
                )
            self._said = now
        elif self._said is None:
            if now - self._first >= QUIET_START_S:
                reason = exc.reason if isinstance(exc, DialError) else str(exc)
                logger.warning("bootstrap at %s unreachable (%s); retrying", self.where, reason)
                self._said = now
        elif now - self._said >= STATUS_EVERY_S:
            logger.warning(
                "bootstrap at %s still unreachable after %d attempts; next attempt in %.1f s "
                "(is `rnet bootstrap` running there? is BOOTSTRAP_NODE right?)",
                self.where,
                self.failures,
                next_in,
            )
            self._said = now

    def connected(self) -> None:
        if self.failures:
            logger.info("bootstrap reachable after %d failed dials", self.failures)
        self.failures, self._said = 0, None


def _where(maddr: str) -> str:
    """The address part of a ``/p2p/`` multiaddr (the peer ID is said separately)."""
    return maddr.split("/p2p/", 1)[0]
