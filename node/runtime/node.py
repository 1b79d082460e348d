"""NodeRuntime: one node (bootstrap or provider) — lifecycle and identity, and the one object the
session engine, the commands, the console and the gateway talk to.

The runtime is created and driven from asyncio (Textual's loop, or ``asyncio.run`` headless):
``await runtime.start()`` ... ``await runtime.aclose()`` (``node.assemble`` does both). libp2p
runs in trio as a guest on that loop (see :mod:`node.bridge`). Its rooms:
:mod:`node.runtime.bus` (events), :mod:`node.runtime.topics` (topics, publishing, rejects),
:mod:`node.runtime.peers` (peer directory, heartbeat), :mod:`node.runtime.roles` (what the
bootstrap and provider roles plug in).

The extension points the session engine, the commands, the console and the gateway use are
listed in the package docstring (:mod:`node.runtime`).
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from node import events as ev
from node.bridge import TrioBridge
from node.commands.interpreter import Interpreter
from node.commands.network import register_network_commands
from node.config import NodeConfig
from node.errors import RuntimeError_
from node.keys import DataDirLock, Libp2pSigner, keypair_from_seed
from node.net.guard import GuardConfig
from node.net.reach import startup_notes
from node.runtime.bootstrap import BootstrapRole
from node.runtime.bus import EventBus, EventSink
from node.runtime.defences import make_guard, make_membership
from node.runtime.identity import claim_identity
from node.runtime.logs import tame_libp2p_logging
from node.runtime.members import Membership
from node.runtime.peers import PeerDirectory, PeerView
from node.runtime.provider import ProviderRole
from node.runtime.rejects import RejectCounter
from node.runtime.roles import Role
from node.runtime.topics import EnvelopeHandler, TopicRouter
from protocol.capacity import SlotUse

if TYPE_CHECKING:
    from libp2p.crypto.keys import KeyPair

    from node.net.host import SwarmHost
    from protocol.envelope import Envelope
    from protocol.messages import Body

logger = logging.getLogger(__name__)

T = TypeVar("T")

ROLES: dict[str, type[BootstrapRole] | type[ProviderRole]] = {
    "bootstrap": BootstrapRole,
    "provider": ProviderRole,
}


def _process_start_monotonic() -> float:
    """When this process started, on the monotonic clock (Linux /proc; else: now)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat(5): starttime, in clock ticks since boot
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        age = uptime - start_ticks / os.sysconf("SC_CLK_TCK")
        return time.monotonic() - max(age, 0.0)
    except (OSError, ValueError, IndexError):
        return time.monotonic()


PROCESS_START = _process_start_monotonic()


class NodeRuntime:
    """One node process's runtime. See the module docstring for the extension points."""

    def __init__(
        self,
        config: NodeConfig,
        *,
        interpreter: Interpreter | None = None,
        model: str = "",
        backend: str = "",
    ) -> None:
        if config.role not in ROLES:
            raise RuntimeError_(f"unknown node role {config.role!r}")
        self.config = config
        self.role = config.role
        self._role_factory = ROLES[config.role]
        # The hub relays for everyone and takes no part (see Role.is_hub).
        self.is_hub = self._role_factory.is_hub
        self.interpreter = interpreter or Interpreter()
        self.bridge = TrioBridge()
        self.bus = EventBus(lambda: self.bridge.loop_or_none)
        self.model = model
        self.backend = backend
        self.status = ""  # why this node takes no session role now ("" = it can)
        self.slot_use = SlotUse(0, 0)  # model slots offered / in use (set by the engine)
        self.capabilities: tuple[str, ...] = ()  # what the model can do, announced in presence
        self.router = TopicRouter(self)
        self.directory = PeerDirectory(self)
        self.guard_config, self.members_mode = GuardConfig(), "open"  # "required": closed
        self.membership = Membership("open", b"", None, None)
        self.role_impl: Role | None = None
        self._host: SwarmHost | None = None
        self._lock: DataDirLock | None = None
        self._seed: bytes | None = None
        self._close_hooks: list[Callable[[], Awaitable[None]]] = []
        self._ready = False
        self._started = False
        self._closed = False
        self._host_finished: trio.Event | None = None
        self.signer: Libp2pSigner | None = None
        self.peer_id: bytes = b""
        self.peer_id_str: str = ""
        register_network_commands(self.interpreter)

    # -- events (either side) -------------------------------------------------------------------

    def subscribe(self, callback: EventSink) -> Callable[[], None]:
        """Add an event sink (called on the asyncio side); returns a function that removes it."""
        return self.bus.subscribe(callback)

    def emit(self, event: ev.Event) -> None:
        """Deliver ``event`` to every sink on the asyncio side (callable from trio or asyncio)."""
        self.bus.emit(event)

    # -- lifecycle (asyncio side) ---------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def host(self) -> SwarmHost:
        if self._host is None:
            raise RuntimeError_("node is not started")
        return self._host

    @property
    def host_or_none(self) -> SwarmHost | None:
        return self._host

    @property
    def nursery(self) -> trio.Nursery:
        """The trio nursery for background tasks (trio side)."""
        return self.bridge.nursery

    @property
    def rejects(self) -> RejectCounter:
        return self.router.rejects

    async def start(self) -> None:
        """Claim the data dir and key, start trio and the libp2p host, start the role.

        Returns once the host listens; ``ready`` follows as an event (a provider is ready when
        connected to the bootstrap and subscribed — possibly later, if the bootstrap is down).
        """
        if self._started:
            raise RuntimeError_("runtime already started")
        self._started = True
        seed = self.claim_identity()
        keypair = keypair_from_seed(seed)
        self.signer = Libp2pSigner(keypair)
        self.peer_id = self.signer.peer_id
        # Importing libp2p takes ~0.7 s of CPU: do it off the loop so a console stays responsive.
        await asyncio.to_thread(importlib.import_module, "node.net.host")
        await self.bridge.start()
        try:
            await self.bridge.run(self._trio_start, keypair)
        except BaseException:
            await self.bridge.aclose()
            self.release_identity()
            raise

    def claim_identity(self) -> bytes:
        """Lock the data dir (picking node-2, node-3... when no name was given) and load the key.

        ``start()`` does it; call it earlier to learn the final ``config.name``. Idempotent.
        """
        if self._seed is None:
            self.config, self._lock, self._seed = claim_identity(self.config)
        return self._seed

    def release_identity(self) -> None:
        """Free the data dir (on close, or when a node is abandoned before it started)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    async def aclose(self) -> None:
        """Stop the role, close the host (sockets), then stop trio. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.bridge.running and self._host is not None:
                try:
                    await asyncio.wait_for(self.bridge.run(self._trio_close), timeout=4.0)
                except TimeoutError:
                    logger.warning("closing the host timed out; stopping anyway")
                except Exception:
                    logger.exception("error while closing the node")
        finally:
            # even when the close itself is cancelled (an App torn down mid-close): stop trio
            # and free the data dir, or a restart would find it locked
            try:
                await self.bridge.aclose()
            finally:
                self.release_identity()

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """From asyncio: run ``await fn(*args)`` in trio and return the result."""
        return await self.bridge.run(fn, *args)

    async def run_asyncio(self, coro_fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """From trio: await an asyncio coroutine (e.g. a model call)."""
        return await self.bridge.run_asyncio(coro_fn, *args)

    def on_close(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Register a trio coroutine function run on close, before the host goes down."""
        self._close_hooks.append(fn)

    async def execute(self, line: str) -> ev.CommandOutput:
        """Run one command line (asyncio side); the result is emitted and returned."""
        outcome = await self.interpreter.execute(self, line)
        out = ev.CommandOutput(outcome.command, outcome.text, outcome.ok)
        if outcome.command or outcome.text:
            self.emit(out)
        return out

    # -- trio side: start/stop ------------------------------------------------------------------

    async def _trio_start(self, keypair: KeyPair) -> None:
        # libp2p is heavy to import (~0.7 s): imported in start(), off the loop, not with us.
        from node.net.addrs import check_port_free
        from node.net.host import SwarmHost

        tame_libp2p_logging()  # libp2p was just imported: its loggers were reset
        cfg = self.config
        try:
            check_port_free(cfg.host, cfg.port)
        except OSError as exc:
            raise RuntimeError_(
                f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}"
            ) from exc
        self._host_finished = finished = trio.Event()
        self.membership = make_membership(self, self.signer.peer_id if self.signer else b"")
        host = SwarmHost(
            keypair,
            listen_host=cfg.host,
            listen_port=cfg.port,
            announce=cfg.announce,
            router=cfg.router,
            on_peer_change=self.directory.on_peer_change,
            on_topology_change=self.directory.on_topology_change,
            guard=make_guard(self),
        )
        self._host = host
        host.set_hub(self.directory.bootstrap_id)
        self.peer_id_str = host.peer_id_str

        async def run_host(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            try:
                await host.run(task_status=task_status)
            finally:
                finished.set()
            if not self._closed:  # never a process that stays up and serves nothing
                raise RuntimeError_("the network side stopped unexpectedly")

        await self.nursery.start(run_host)
        if not host.addrs():
            # libp2p logs a failed listen and carries on with no address; we stop instead.
            await host.close()
            with trio.move_on_after(3.0):
                await finished.wait()
            raise RuntimeError_(
                f"cannot listen on {cfg.host}:{cfg.port} (address in use or not available)"
            )
        for level, note in startup_notes(cfg.host, host.announcer.bound_port(), host.addrs()):
            logger.log(level, "%s", note)
        await self.router.join_mesh()
        self.directory.start()
        self.role_impl = self._role_factory(self)
        await self.role_impl.start()

    async def _trio_close(self) -> None:
        for hook in reversed(self._close_hooks):
            with trio.move_on_after(1.0):
                try:
                    await hook()
                except Exception:
                    logger.exception("close hook failed")
        if self._host is not None:
            await self._host.close()
            if self._host_finished is not None:
                with trio.move_on_after(3.0):
                    await self._host_finished.wait()

    def mark_ready(self) -> None:
        """Called by the role once (connected and subscribed); emits ``ready``."""
        if self._ready:
            return
        self._ready = True
        # Everything allocated while starting (libp2p's modules, the host) lives as long as the
        # process: move it out of the collector's way; measured 3x shorter p99 delivery tails.
        gc.freeze()
        elapsed = (time.monotonic() - PROCESS_START) * 1000.0
        logger.info("ready after %.0f ms as %s (%s)", elapsed, self.peer_id_str, self.role)
        self.emit(
            ev.Ready(
                peer_id=self.peer_id_str,
                addrs=self.host.addrs(),
                role=self.role,
                name=self.config.name,
                elapsed_ms=round(elapsed, 1),
            )
        )

    # -- (a) topics, (b) publishing, rejects: the topic router -----------------------------------

    async def join_topic(self, topic: str, handler: EnvelopeHandler | None = None) -> bool:
        return await self.router.join_topic(topic, handler)

    def relay_topic(self, topic: str) -> bool:
        return self.router.relay_topic(topic)

    async def leave_topic(self, topic: str) -> bool:
        return await self.router.leave_topic(topic)

    def topics(self) -> list[str]:
        return self.router.topics()

    def add_mesh_handler(self, kind: str, handler: EnvelopeHandler) -> None:
        self.router.add_mesh_handler(kind, handler)

    def next_seq(self) -> int:
        return self.router.next_seq()

    async def publish_envelope(self, topic: str, body: Body, task: str = "") -> Envelope:
        return await self.router.publish_envelope(topic, body, task)

    async def publish_raw(self, topic: str, data: bytes) -> None:
        await self.router.publish_raw(topic, data)

    def reject(self, reason: str, sender: str, topic: str, detail: str = "") -> None:
        self.router.reject(reason, sender, topic, detail)

    # -- presence, bootmesh, peers (g): the peer directory ---------------------------------------

    def set_presence(
        self,
        model: str = "",
        backend: str = "",
        status: str = "",
        capabilities: tuple[str, ...] | None = None,
    ) -> None:
        """Change what this node announces (model/backend, ``status``: why it takes no session
        role, "" when it can, and ``capabilities``: what its model can do, None = unchanged)
        and re-announce it (any side)."""
        self.model, self.backend, self.status = model, backend, status
        if capabilities is not None:
            self.capabilities = tuple(capabilities)
        if self._host is not None and self.role_impl is not None:
            try:
                self.bridge.start_soon(self.publish_presence)
            except Exception:
                logger.debug("presence not re-published (not running)")

    async def publish_presence(self) -> None:
        await self.directory.publish_presence()

    def set_slots(self, use: SlotUse) -> None:
        """The engine's slot use changed: announce it (debounced; trio side)."""
        self.slot_use = use
        self.directory.slots_changed()

    def note_peer(self, peer: str, **info: Any) -> None:
        """What the bootstrap's peer list says of ``peer`` (``PeerDirectory.note_peer``'s
        keywords: name, role, model, backend, addrs, slots, slots_used, capabilities)."""
        self.directory.note_peer(peer, **info)

    def has_presence(self, peer: str) -> bool:
        return self.directory.has_presence(peer)

    def set_bootmesh(self, topics: dict[str, list[str]]) -> None:
        self.directory.set_bootmesh(topics)

    def bootmesh(self) -> dict[str, list[str]]:
        return self.directory.bootmesh()

    def mesh(self) -> dict[str, list[str]]:
        return self.host.mesh()

    def set_bootstrap_id(self, peer: str | None) -> None:
        """The hub this node routes through (providers: their bootstrap)."""
        self.directory.bootstrap_id = peer
        if self._host is not None:
            self._host.set_hub(peer)

    @property
    def bootstrap_id(self) -> str | None:
        """Base58 ID of this node's bootstrap (None on the bootstrap itself)."""
        return self.directory.bootstrap_id

    def peers(self) -> list[PeerView]:
        return self.directory.peers()

    def provider_peers(self) -> list[PeerView]:
        return self.directory.provider_peers()
