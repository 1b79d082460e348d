"""The peer directory: who is online, what they announced, the bootstrap's mesh map, liveness.

Fed by the host's connection notifications, presence and bootmesh envelopes on ``swarm/mesh`` and
the bootstrap's peer list; emits ``peer_joined``/``peer_left``/``peer_info``/``bootmesh``/``mesh``.
Its loops (trio): the peer watch (joined/left, after a change), the topology loop (debounced
subscription changes -> role + ``mesh`` event) and the heartbeat (ping; drops hung peers).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from node import events as ev
from node.errors import HostError
from node.runtime.logs import carry_on
from node.runtime.seen import FirstSeen, own_presence
from protocol.addresses import peer_addrs
from protocol.envelope import Envelope
from protocol.identity import peer_id_to_str
from protocol.messages import MESH_TOPIC
from protocol.slot_pacing import SlotPacer

if TYPE_CHECKING:
    from node.runtime.node import NodeRuntime

logger = logging.getLogger(__name__)

# Pings cost the hub CPU (a stream negotiation each): every 5 s, or faster for a short
# --hung-after so a hang is still noticed within about that time.
HEARTBEAT_INTERVAL_S = 5.0
# A ping may wait this long: a node busy with a burst answers late, and that is not a hang.
HEARTBEAT_TIMEOUT_S = 5.0
TOPOLOGY_DEBOUNCE_S = 0.1
ANNOUNCE_CHECK_S = 10.0  # how often the announced addresses are compared with the last ones


@dataclass
class PeerRecord:
    peer_id: str
    name: str = ""
    role: str = ""
    model: str = ""
    backend: str = ""
    status: str = ""  # from its presence: why it takes no session role ("" = it can)
    addrs: tuple[str, ...] = ()
    rtt_ms: float | None = None
    rtt_shown: float | None = None  # the RTT last sent in a peer_info event
    last_ok: float = 0.0  # monotonic time of the last pong (or of connecting)
    presence_seq: int = -1
    slots: int = 0  # model slots offered (presence); 0: none announced
    slots_used: int = 0
    capabilities: tuple[str, ...] = ()  # from its presence (issue 17: tools, json)


@dataclass(frozen=True, slots=True)
class PeerView:
    """A snapshot of one known peer."""

    peer_id: str
    name: str
    role: str
    model: str
    backend: str
    rtt_ms: float | None
    addrs: tuple[str, ...]
    connected: bool  # a direct connection (not only known through the bootstrap)
    status: str = ""  # why it takes no session role now ("" = it can)
    slots: int = 0  # model slots it offers (its last presence), and how many are in use
    slots_used: int = 0
    capabilities: tuple[str, ...] = ()


class PeerDirectory:
    """Every peer this node knows of, for one runtime (trio side unless said otherwise)."""

    def __init__(self, runtime: NodeRuntime) -> None:
        self.rt = runtime
        self._peers: dict[str, PeerRecord] = {}
        self._known: set[str] = set()
        self._bootmesh: dict[str, list[str]] = {}
        self._bootmesh_seq = -1
        self.bootstrap_id: str | None = None  # base58 of our bootstrap (None on the bootstrap)
        self._mesh_view: dict[str, list[str]] = {}
        self._peers_dirty: trio.Event | None = None
        self._topology_dirty: trio.Event | None = None
        self._slots_dirty: trio.Event | None = None
        self._slots_pacer = SlotPacer()  # what our last presence said of our slots, and when
        self.first_seen = FirstSeen()  # the bootstrap's online_s, the newcomer rule

    def start(self) -> None:
        """Start the loops in the runtime's nursery (trio side, host running)."""
        self._peers_dirty = trio.Event()
        self._topology_dirty = trio.Event()
        self._slots_dirty = trio.Event()
        nursery = self.rt.nursery
        nursery.start_soon(self._peer_watch_loop)
        nursery.start_soon(self._topology_loop)
        nursery.start_soon(self._heartbeat_loop)
        nursery.start_soon(self._announce_watch_loop)
        nursery.start_soon(self._slots_loop)

    # -- presence -------------------------------------------------------------------------

    async def publish_presence(self) -> None:
        rt, use = self.rt, self.rt.slot_use
        try:
            await rt.publish_envelope(MESH_TOPIC, own_presence(rt))
        except Exception as exc:
            logger.warning("presence not published: %s", exc)
            return
        self._slots_pacer.sent(use, int(trio.current_time() * 1000))

    def slots_changed(self) -> None:
        """This node's slot use changed: re-announce it (paced, trio side)."""
        if self._slots_dirty is not None:
            self._slots_dirty.set()

    async def _slots_loop(self) -> None:
        """Slot use goes out settled and paced by the swarm's size (protocol/slot_pacing.py)."""
        assert self._slots_dirty is not None
        while True:
            await self._slots_dirty.wait()
            now = int(trio.current_time() * 1000)
            due = self._slots_pacer.due_ms(now, nodes=len(self._known) + 1)
            await trio.sleep(max(0, due - now) / 1000)
            self._slots_dirty = trio.Event()  # what changed meanwhile is in the use read now
            if self._slots_pacer.worth_sending(self.rt.slot_use):
                await self.publish_presence()

    def record(self, peer: str) -> PeerRecord:
        rec = self._peers.get(peer)
        if rec is None:
            rec = self._peers[peer] = PeerRecord(peer)
            self.first_seen.note(peer)
        return rec

    def apply_presence(self, sender: str, env: Envelope) -> None:
        body = env.body
        self.rt.membership.presented(env.sender, body.cert)
        rec = self.record(sender)
        if env.seq <= rec.presence_seq:
            return  # an older announcement delivered late
        rec.presence_seq = env.seq
        new = (body.name, body.role, body.model, body.backend, body.status)
        changed = (rec.name, rec.role, rec.model, rec.backend, rec.status) != new
        rec.name, rec.role, rec.model, rec.backend, rec.status = new
        slots = (body.slots, body.slots_used)
        changed = changed or slots != (rec.slots, rec.slots_used)
        rec.slots, rec.slots_used = slots
        addrs, dropped = peer_addrs(body.addrs, sender)
        if dropped:
            self.rt.reject(
                "bad_addrs", sender, MESH_TOPIC, f"{dropped} unusable address(es) dropped"
            )
        rec.addrs = tuple(a.text() for a in addrs)
        rec.capabilities = tuple(body.capabilities)
        if changed and sender in self._known:
            self._emit_peer_info(rec, "connected")
        role = self.rt.role_impl
        if role is not None:
            role.on_presence(sender, rec)
        self.mark_dirty()

    def note_peer(
        self,
        peer: str,
        *,
        name: str = "",
        role: str = "",
        model: str = "",
        backend: str = "",
        addrs: tuple[str, ...] = (),
        slots: int = 0,
        slots_used: int = 0,
        capabilities: tuple[str, ...] = (),
        online_s: float = 0.0,
    ) -> None:
        """What a third party (the bootstrap's peer list) says about a peer whose own presence
        we have not received (its own presence wins); ``online_s``: how long the bootstrap knows it."""
        if peer == self.rt.peer_id_str:
            return
        rec = self.record(peer)
        self.first_seen.note(peer, online_s)
        if rec.presence_seq >= 0:
            return
        new = (
            name or rec.name,
            role or rec.role,
            model or rec.model,
            backend or rec.backend,
            slots or rec.slots,
            slots_used if slots else rec.slots_used,
        )
        changed = new != (rec.name, rec.role, rec.model, rec.backend, rec.slots, rec.slots_used)
        rec.name, rec.role, rec.model, rec.backend, rec.slots, rec.slots_used = new
        valid, _ = peer_addrs(addrs, peer)  # a third party's word: only the peer's own id
        rec.addrs = tuple(a.text() for a in valid) or rec.addrs
        rec.capabilities = capabilities or rec.capabilities
        if changed and peer in self._known:
            self._emit_peer_info(rec, "connected")

    def has_presence(self, peer: str) -> bool:
        rec = self._peers.get(peer)
        return rec is not None and bool(rec.name)

    # -- the bootstrap's mesh map ----------------------------------------------------------

    def apply_bootmesh(self, sender: str, env: Envelope) -> None:
        if self.rt.is_hub:
            return
        if self.bootstrap_id is not None and sender != self.bootstrap_id:
            self.rt.reject(
                "not_bootstrap",
                sender,
                MESH_TOPIC,
                "bootmesh from a peer that is not our bootstrap",
            )
            return
        if env.seq <= self._bootmesh_seq:
            return
        self._bootmesh_seq = env.seq
        topics = {
            topic: sorted(peer_id_to_str(p) for p in peers)
            for topic, peers in env.body.topics.items()
        }
        self.set_bootmesh(topics)

    def set_bootmesh(self, topics: dict[str, list[str]]) -> None:
        """Replace the bootstrap's mesh map as this node knows it; emits ``bootmesh``."""
        if topics == self._bootmesh:
            return
        self._bootmesh = topics
        self.rt.emit(ev.Bootmesh(topics=dict(topics)))
        role = self.rt.role_impl
        if role is not None:
            role.on_bootmesh(topics)
        self.mark_dirty()

    def bootmesh(self) -> dict[str, list[str]]:
        return dict(self._bootmesh)

    def bootmesh_listeners(self, topic: str) -> set[str]:
        return set(self._bootmesh.get(topic, ()))

    # -- views ------------------------------------------------------------------------------

    def peers(self) -> list[PeerView]:
        """Every peer currently known online, with its presence and last RTT."""
        host = self.rt.host_or_none
        out = []
        for peer in sorted(self._known):
            rec = self._peers.get(peer) or PeerRecord(peer)
            role = rec.role or ("bootstrap" if peer == self.bootstrap_id else "")
            out.append(
                PeerView(
                    peer_id=peer,
                    name=rec.name,
                    role=role,
                    model=rec.model,
                    backend=rec.backend,
                    rtt_ms=rec.rtt_ms,
                    addrs=rec.addrs,
                    connected=bool(host and host.is_connected(peer)),
                    status=rec.status,
                    slots=rec.slots,
                    slots_used=rec.slots_used,
                    capabilities=rec.capabilities,
                )
            )
        return out

    def provider_peers(self) -> list[PeerView]:
        return [p for p in self.peers() if p.role != "bootstrap" and p.peer_id != self.bootstrap_id]

    def _known_now(self) -> set[str]:
        host = self.rt.host
        known = set(host.connected_peers())
        if not self.rt.is_hub and self.bootstrap_id in known:
            # Through the bootstrap we know everyone it sees on swarm/mesh.
            known.update(self._bootmesh.get(MESH_TOPIC, ()))
        known.discard(self.rt.peer_id_str)
        return known

    def _emit_peer_info(self, rec: PeerRecord, state: str) -> None:
        rec.rtt_shown = rec.rtt_ms
        self.rt.emit(
            ev.PeerInfo(
                peer_id=rec.peer_id,
                model=rec.model,
                backend=rec.backend,
                rtt_ms=None if rec.rtt_ms is None else round(rec.rtt_ms, 2),
                state=state,
                name=rec.name,
                status=rec.status,
                slots=rec.slots,
                slots_used=rec.slots_used,
            )
        )

    # -- change notifications from the host (sync, trio side) -------------------------------

    def on_peer_change(self, peer: str, what: str) -> None:
        if what == "connected":
            self.record(peer).last_ok = time.monotonic()
        role = self.rt.role_impl
        if role is not None:
            role.on_connection(peer, what)
        self.mark_dirty()
        self.on_topology_change()

    def mark_dirty(self) -> None:
        if self._peers_dirty is not None:
            self._peers_dirty.set()

    def on_topology_change(self) -> None:
        role = self.rt.role_impl
        if role is not None:
            role.on_subscriptions()
        if self._topology_dirty is not None:
            self._topology_dirty.set()

    # -- loops ------------------------------------------------------------------------------

    async def _peer_watch_loop(self) -> None:
        assert self._peers_dirty is not None
        while True:
            await self._peers_dirty.wait()
            self._peers_dirty = trio.Event()
            # let libp2p finish its own bookkeeping of the connection change first
            await trio.sleep(0.01)
            with carry_on("updating the peer list"):
                known = self._known_now()
                joined, left = known - self._known, self._known - known
                self._known = known
                for peer in sorted(joined):
                    rec = self.record(peer)
                    self.rt.emit(ev.PeerJoined(peer_id=peer, addr=self.rt.host.peer_addr(peer)))
                    self._emit_peer_info(rec, "connected")
                for peer in sorted(left):
                    rec = self.record(peer)
                    rec.rtt_ms = None
                    self.rt.emit(ev.PeerLeft(peer_id=peer))
                    self._emit_peer_info(rec, "lost")

    async def _topology_loop(self) -> None:
        assert self._topology_dirty is not None
        while True:
            await self._topology_dirty.wait()
            # debounce: a burst of subscription changes becomes one update
            await trio.sleep(TOPOLOGY_DEBOUNCE_S)
            self._topology_dirty = trio.Event()
            with carry_on("handling a topology change"):
                role = self.rt.role_impl
                if role is not None:
                    await role.on_topology()
                view = self.rt.host.mesh()
                if view != self._mesh_view:
                    self._mesh_view = view
                    self.rt.emit(ev.Mesh(topics=view))

    async def _announce_watch_loop(self) -> None:
        """Interfaces come and go (a VPN, DHCP) and observed addresses get confirmed as peers
        connect: when what we announce changes, say so and announce it again."""
        last = self.rt.host.addrs()
        while True:
            await trio.sleep(ANNOUNCE_CHECK_S)
            now = self.rt.host.addrs()
            if now != last and now:
                last = now
                logger.info("now announcing %s", " ".join(now))
                if not self.rt.is_hub and self.rt.ready:
                    await self.publish_presence()

    async def _heartbeat_loop(self) -> None:
        """pitfall 7: hung peers are not detected by libp2p; ping every connected peer."""
        hung_after = self.rt.config.hung_after
        host = self.rt.host

        async def probe(peer: str) -> None:
            with carry_on(f"heartbeat to {peer[-6:]}"):
                await probe_once(peer)

        async def probe_once(peer: str) -> None:
            rec = self.record(peer)
            if not rec.last_ok:
                rec.last_ok = time.monotonic()
            try:
                rtt = await host.ping_once(peer, timeout=min(HEARTBEAT_TIMEOUT_S, hung_after))
            except HostError as exc:
                silent = time.monotonic() - rec.last_ok
                logger.debug("heartbeat %s missed (silent %.1f s): %s", peer[-6:], silent, exc)
                if silent >= hung_after and host.is_connected(peer):
                    logger.warning(
                        "peer %s has not answered pings for %.0f s; dropping it", peer[-6:], silent
                    )
                    await host.disconnect(peer)
                    self.mark_dirty()
                return
            rec.last_ok = time.monotonic()
            rec.rtt_ms = rtt
            if peer in self._known and rtt_moved(rec.rtt_shown, rtt):
                self._emit_peer_info(rec, "connected")

        while True:
            await trio.sleep(min(HEARTBEAT_INTERVAL_S, hung_after / 3))
            async with trio.open_nursery() as nursery:
                for peer in host.connected_peers():
                    nursery.start_soon(probe, peer)


def rtt_moved(shown: float | None, rtt: float) -> bool:
    """Whether a new ping RTT is worth a ``peer_info`` event: the first one, or one that moved
    by a fifth (at least 1 ms) from the one on screen. Keeps the Peers pane current without an
    event per ping."""
    return shown is None or abs(rtt - shown) >= max(1.0, 0.2 * shown)
