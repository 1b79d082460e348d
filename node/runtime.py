"""NodeRuntime: one node (bootstrap or provider) — its libp2p host, the bridge, events, commands.

The runtime is created and driven from asyncio (Textual's loop, or ``asyncio.run`` headless):
``await runtime.start()`` ... ``await runtime.aclose()``. libp2p runs in trio as a guest on that
loop (see :mod:`node.bridge`).

Extension points (for the sessions engine, the console, the gateway)
--------------------------------------------------------------------
Trio side (call from trio tasks, e.g. inside handlers or tasks started in ``runtime.nursery``):

(a) ``await runtime.join_topic(topic, handler)`` / ``await runtime.leave_topic(topic)``:
    subscribe a topic; ``handler(env: protocol.envelope.Envelope) -> Awaitable[None]`` is called
    in trio for every envelope from another peer that passed ``open_envelope`` (with the pubsub
    sender as ``expected_sender``) and the replay guard. Failures become ``rejected`` events.
    ``handler=None`` shows the topic's traffic as ``message`` events (the console's ``join``).
    ``runtime.add_mesh_handler(kind, handler)`` receives kinds on ``swarm/mesh`` other than
    presence/bootmesh (e.g. ``advertise``).
(b) ``await runtime.publish_envelope(topic, body, task) -> Envelope``: seal with the node key
    (seq from a per-node counter starting at ``time.time_ns()``) and publish.
(c) ``runtime.emit(event)``: hand an event (``node.events``) to every sink; callable from either
    side; sinks are called on the asyncio side, in order.
(d) ``runtime.nursery``: the trio nursery for background tasks (``runtime.nursery.start_soon``).
(e) ``await runtime.run_asyncio(coro_fn, *args)``: from trio, await an asyncio coroutine (model
    calls: ollama's client is httpx/asyncio). The other way, from asyncio:
    ``await runtime.call(trio_fn, *args)`` runs a trio function and returns its result.
(f) ``runtime.interpreter``: the command :class:`~node.commands.Interpreter`;
    ``runtime.interpreter.register(name, usage, help, handler)``; handlers run on asyncio.
(g) ``runtime.peers()``: snapshot list of :class:`PeerView` (id, name, role, model, backend,
    rtt, addrs, connected) for every peer currently known online; ``runtime.provider_peers()``
    the providers only.

Also: ``runtime.subscribe(callback) -> unsubscribe`` (event sink), ``await runtime.execute(line)``
(run a command line, emits and returns ``command_output``), ``runtime.peer_id`` (bytes),
``runtime.peer_id_str``, ``runtime.signer``, ``runtime.config``, ``runtime.ready``,
``runtime.set_presence(model, backend)``, ``runtime.on_close(async_fn)`` (trio cleanup before the
host closes), ``runtime.reject(reason, sender, topic, detail)`` (count + ``rejected`` event for a
message an extension found invalid), ``runtime.slm_backend`` (the provider's model backend).

Building one from parsed flags: ``build_runtime(args, resolve_node_config(args, role))`` (adds
the model backend, ``slm`` and the sessions engine when present); logging:
``setup_logging(level, runtime=..., log_file=...)``.

Publishing returns as soon as the message is queued; it waits (bounded, ``ROUTE_WAIT_S``) only
when no route is known yet for a topic someone is on (``_await_route``).
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import itertools
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from node import events as ev
from node.bridge import TrioBridge
from node.commands import Interpreter
from node.config import MESH_TOPIC, NodeConfig

if TYPE_CHECKING:
    import trio

    from node.host import PubsubMessage, SwarmHost
    from protocol.envelope import Envelope

logger = logging.getLogger(__name__)

T = TypeVar("T")
EnvelopeHandler = Callable[["Envelope"], Awaitable[None]]
EventSink = Callable[[ev.Event], None]


def _process_start_monotonic() -> float:
    """When this process started, on the monotonic clock (Linux /proc; else: now)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat(5): starttime, in clock ticks since boot
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        import os

        age = uptime - start_ticks / os.sysconf("SC_CLK_TCK")
        return time.monotonic() - max(age, 0.0)
    except (OSError, ValueError, IndexError):
        return time.monotonic()


PROCESS_START = _process_start_monotonic()
# Pings cost the hub CPU (a stream negotiation each): every 5 s, or faster for a short
# --hung-after so a hang is still noticed within about that time.
HEARTBEAT_INTERVAL_S = 5.0
# A ping may wait this long: a node busy with a burst answers late, and that is not a hang.
HEARTBEAT_TIMEOUT_S = 5.0
TOPOLOGY_DEBOUNCE_S = 0.1
ROUTE_WAIT_S = 3.0  # longest a publish waits for a route to a freshly joined topic


class RuntimeError_(Exception):
    """The runtime cannot do what was asked (not started, bad state); message is user-facing."""


@dataclass
class _PeerRecord:
    peer_id: str
    name: str = ""
    role: str = ""
    model: str = ""
    backend: str = ""
    addrs: tuple[str, ...] = ()
    rtt_ms: float | None = None
    last_ok: float = 0.0  # monotonic time of the last pong (or of connecting)
    presence_seq: int = -1


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


@dataclass
class _Topic:
    handler: EnvelopeHandler | None
    relay_only: bool = False  # the bootstrap forwards it, takes no part: no decoding


@dataclass
class RejectCounter:
    """Rejected messages: total, per reason, per sender (bounded)."""

    total: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    by_sender: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str, sender: str = "") -> int:
        self.total += 1
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        if len(self.by_sender) < 10_000 or sender in self.by_sender:
            self.by_sender[sender] = self.by_sender.get(sender, 0) + 1
        return self.total

    def from_sender(self, sender: str) -> int:
        return self.by_sender.get(sender, 0)


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
        self.config = config
        self.role = config.role
        self.interpreter = interpreter or Interpreter()
        self.bridge = TrioBridge()
        self.model = model
        self.backend = backend
        self.rejects = RejectCounter()
        self._sinks: list[EventSink] = []
        self._host: SwarmHost | None = None
        self._lock: Any = None
        self._seed: bytes | None = None
        self.slm_backend: Any = None  # node.slm Backend of a provider (None on the bootstrap)
        self._seq = itertools.count(time.time_ns())
        self._topics: dict[str, _Topic] = {}
        self._mesh_handlers: dict[str, EnvelopeHandler] = {}
        self._peers: dict[str, _PeerRecord] = {}
        self._known: set[str] = set()
        self._bootmesh: dict[str, list[str]] = {}
        self._bootmesh_seq = -1
        self._bootstrap_id: str | None = None
        self._mesh_view: dict[str, list[str]] = {}
        self._replay: Any = None
        self._close_hooks: list[Callable[[], Awaitable[None]]] = []
        self._role_impl: Any = None
        self._ready = False
        self._started = False
        self._closed = False
        self._peers_dirty: trio.Event | None = None
        self._topology_dirty: trio.Event | None = None
        self._host_finished: trio.Event | None = None
        self.signer: Any = None
        self.peer_id: bytes = b""
        self.peer_id_str: str = ""
        from node.commands import register_network_commands

        register_network_commands(self.interpreter)

    # ------------------------------------------------------------------------------------------
    # events
    # ------------------------------------------------------------------------------------------

    def subscribe(self, callback: EventSink) -> Callable[[], None]:
        """Add an event sink (called on the asyncio side); returns a function that removes it."""
        self._sinks.append(callback)

        def unsubscribe() -> None:
            if callback in self._sinks:
                self._sinks.remove(callback)

        return unsubscribe

    def emit(self, event: ev.Event) -> None:
        """Deliver ``event`` to every sink on the asyncio side (callable from trio or asyncio)."""
        loop = self.bridge.loop_or_none
        if loop is None or loop.is_closed():
            self._dispatch(event)  # not started (or gone): deliver synchronously
            return
        try:
            loop.call_soon_threadsafe(self._dispatch, event)
        except RuntimeError:
            self._dispatch(event)  # the loop closed meanwhile: best effort

    def _dispatch(self, event: ev.Event) -> None:
        for sink in list(self._sinks):
            try:
                sink(event)
            except Exception:
                # A broken sink (UI bug) must not stop the others or the node.
                logger.exception("event sink %r failed on %s", sink, event.event)

    # ------------------------------------------------------------------------------------------
    # lifecycle (asyncio side)
    # ------------------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def host(self) -> SwarmHost:
        if self._host is None:
            raise RuntimeError_("node is not started")
        return self._host

    @property
    def nursery(self) -> trio.Nursery:
        """The trio nursery for background tasks (trio side)."""
        return self.bridge.nursery

    async def start(self) -> None:
        """Claim the data dir and key, start trio and the libp2p host, start the role.

        Returns once the host listens; ``ready`` follows as an event (a provider is ready when
        connected to the bootstrap and subscribed — possibly later, if the bootstrap is down).
        """
        if self._started:
            raise RuntimeError_("runtime already started")
        self._started = True
        seed = self.claim_identity()
        from node.keys import Libp2pSigner, keypair_from_seed
        from protocol.envelope import ReplayGuard

        keypair = keypair_from_seed(seed)
        self.signer = Libp2pSigner(keypair)
        self.peer_id = self.signer.peer_id
        self._replay = ReplayGuard()
        # Importing libp2p takes ~0.7 s of CPU: do it off the loop so a console stays responsive.
        await asyncio.to_thread(importlib.import_module, "node.host")
        await self.bridge.start()
        try:
            await self.bridge.run(self._trio_start, keypair)
        except BaseException:
            await self.bridge.aclose()
            self._release_lock()
            raise

    def claim_identity(self) -> bytes:
        """Lock the data dir (picking node-2, node-3... when no name was given) and load the key.

        ``start()`` does it; call it earlier to learn the final ``config.name``. Idempotent.
        """
        if self._seed is not None:
            return self._seed
        self._seed = self._claim_identity()
        return self._seed

    def _claim_identity(self) -> bytes:
        from node.keys import DataDirLock, KeyError_, load_or_create_seed, parse_seed

        cfg = self.config
        data_dir = cfg.data_dir
        lock = DataDirLock(data_dir)
        if not lock.try_acquire():
            if cfg.name_explicit:
                raise RuntimeError_(
                    f"another node is running with data dir {data_dir} (pick another --name)"
                )
            # No name given: take the first free default name (node, node-2, node-3...).
            for i in itertools.count(2):
                name = f"{cfg.name}-{i}"
                data_dir = cfg.data_dir.parent / name
                lock = DataDirLock(data_dir)
                if lock.try_acquire():
                    from dataclasses import replace

                    self.config = cfg = replace(cfg, name=name, data_dir=data_dir)
                    break
                if i > 999:
                    raise RuntimeError_("no free data dir")
        self._lock = lock
        try:
            if cfg.role == "bootstrap" and cfg.bootstrap_key:
                return parse_seed(cfg.bootstrap_key)
            return load_or_create_seed(data_dir)
        except (KeyError_, OSError) as exc:
            self._release_lock()
            raise RuntimeError_(f"node key: {exc}") from exc

    def _release_lock(self) -> None:
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
            # even when the close itself is cancelled (an App torn down mid-close): stop trio,
            # the model client and free the data dir, or a restart would find it locked
            try:
                await self.bridge.aclose()
                if self.slm_backend is not None:
                    try:
                        await self.slm_backend.aclose()
                    except Exception:
                        logger.debug("closing the model backend failed", exc_info=True)
            finally:
                self._release_lock()

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

    # ------------------------------------------------------------------------------------------
    # trio side: start/stop
    # ------------------------------------------------------------------------------------------

    async def _trio_start(self, keypair: Any) -> None:
        import trio

        from node.host import SwarmHost, check_port_free

        tame_libp2p_logging()  # libp2p was just imported: its loggers were reset
        cfg = self.config
        try:
            check_port_free(cfg.host, cfg.port)
        except OSError as exc:
            raise RuntimeError_(
                f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}"
            ) from exc
        self._peers_dirty = trio.Event()
        self._topology_dirty = trio.Event()
        self._host_finished = trio.Event()
        host = SwarmHost(
            keypair,
            listen_host=cfg.host,
            listen_port=cfg.port,
            router=cfg.router,
            on_peer_change=self._on_peer_change,
            on_topology_change=self._on_topology_change,
        )
        self._host = host
        host.set_hub(self._bootstrap_id)
        self.peer_id_str = host.peer_id_str
        finished = self._host_finished

        async def run_host(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            try:
                await host.run(task_status=task_status)
            finally:
                finished.set()

        await self.nursery.start(run_host)
        if not host.addrs():
            # libp2p logs a failed listen and carries on with no address; we stop instead.
            await host.close()
            with trio.move_on_after(3.0):
                await finished.wait()
            raise RuntimeError_(
                f"cannot listen on {cfg.host}:{cfg.port} (address in use or not available)"
            )
        await host.subscribe(MESH_TOPIC, self._on_pubsub_message)
        self._topics[MESH_TOPIC] = _Topic(None)
        self.nursery.start_soon(self._peer_watch_loop)
        self.nursery.start_soon(self._topology_loop)
        self.nursery.start_soon(self._heartbeat_loop)
        if self.role == "bootstrap":
            from node.bootstrap import BootstrapRole

            self._role_impl = BootstrapRole(self)
        else:
            from node.provider import ProviderRole

            self._role_impl = ProviderRole(self)
        await self._role_impl.start()

    async def _trio_close(self) -> None:
        import trio

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

    # ------------------------------------------------------------------------------------------
    # (a) topics and (b) publishing — trio side
    # ------------------------------------------------------------------------------------------

    async def join_topic(self, topic: str, handler: EnvelopeHandler | None = None) -> bool:
        """Subscribe ``topic``; envelopes from others go to ``handler`` (None: message events).

        Returns False if already joined (the handler is then replaced). A topic the hub only
        relays (:meth:`relay_topic`) becomes a real subscription.
        """
        _check_topic(topic)
        entry = self._topics.get(topic)
        if entry is not None and not entry.relay_only:
            entry.handler = handler
            return False
        self._topics[topic] = _Topic(handler, False)
        if entry is not None:
            self.host.unrelay(topic)  # relayed until now: a real subscription from here on
        await self.host.subscribe(topic, self._on_pubsub_message)
        self._on_topology_change()
        return True

    def relay_topic(self, topic: str) -> bool:
        """Hub: forward ``topic`` without subscribing or announcing (synchronous, so it can be
        done while the subscription that asked for it is read); its messages are not even
        decoded — CPU on the hub is the swarm's scaling limit. False if already on it."""
        _check_topic(topic)
        if topic in self._topics:
            return False
        self._topics[topic] = _Topic(None, True)
        self.host.relay(topic)
        return True

    async def leave_topic(self, topic: str) -> bool:
        if topic == MESH_TOPIC:
            raise RuntimeError_(
                f"{MESH_TOPIC} carries presence and the mesh map; it cannot be left"
            )
        entry = self._topics.pop(topic, None)
        if entry is None:
            return False
        if entry.relay_only:
            self.host.unrelay(topic)
            return True
        await self.host.unsubscribe(topic)
        self._on_topology_change()
        return True

    def topics(self) -> list[str]:
        return sorted(self._topics)

    def add_mesh_handler(self, kind: str, handler: EnvelopeHandler) -> None:
        """Receive envelopes of ``kind`` arriving on ``swarm/mesh`` (e.g. ``advertise``)."""
        self._mesh_handlers[kind] = handler

    def next_seq(self) -> int:
        return next(self._seq)

    async def publish_envelope(self, topic: str, body: Any, task: str = "") -> Envelope:
        """Seal ``body`` with this node's key and publish it on ``topic``."""
        from protocol.envelope import seal

        env = seal(
            body,
            task=task,
            signer=self.signer,
            seq=self.next_seq(),
            ts_ms=time.time_ns() // 1_000_000,
        )
        await self._publish(topic, env.raw)
        return env

    async def publish_raw(self, topic: str, data: bytes) -> None:
        """Publish bytes as they are (the console's ``publish``: plain text)."""
        _check_topic(topic)
        await self._publish(topic, data)

    async def _publish(self, topic: str, data: bytes) -> None:
        await self._await_route(topic)
        await self.host.publish(topic, data)

    async def _await_route(self, topic: str) -> None:
        """Floodsub sends only to peers it knows are subscribed, so a publish right after a
        topic was joined can go nowhere. Through the hub (floodsub) there is nothing to wait
        for: every publish goes to it, and it relays a topic from the first subscription that
        reaches it. Otherwise, when someone is on the topic but no route is known, wait
        (bounded) for a peer that will carry it: the bootstrap once it subscribes (gossipsub),
        or without the bootstrap any direct peer on the topic (it floods it on)."""
        import trio

        host = self.host
        if self.role == "bootstrap" or host.hub_connected() or host.topic_peers(topic):
            return
        boot = self._bootstrap_id
        if boot is not None and host.is_connected(boot):
            listeners = set(self._bootmesh.get(topic, ())) - {self.peer_id_str}
            candidates = [boot]
        else:
            listeners = set()
            candidates = [p for p in host.connected_peers() if p != boot]
        if not candidates or (topic not in self._topics and not listeners):
            return  # nobody to wait for, or nobody is on it as far as we were told
        async with trio.open_nursery() as nursery:

            async def wait_one(peer: str) -> None:
                try:
                    await host.wait_for_subscription(peer, topic, ROUTE_WAIT_S)
                except trio.TooSlowError:
                    logger.info("no peer is subscribed to %s yet; publishing anyway", topic)
                nursery.cancel_scope.cancel()

            for peer in candidates:
                nursery.start_soon(wait_one, peer)

    # ------------------------------------------------------------------------------------------
    # receiving
    # ------------------------------------------------------------------------------------------

    def reject(self, reason: str, sender: str, topic: str, detail: str = "") -> None:
        """Count and report a message that failed validation (also usable by extensions)."""
        total = self.rejects.add(reason, sender)
        per_sender = self.rejects.from_sender(sender)
        # A hostile peer must not flood the log: the first few per sender, then every 100th.
        if per_sender <= 5 or per_sender % 100 == 0:
            logger.info(
                "rejected %s from %s on %s (%d from it so far): %s",
                reason,
                sender[-6:],
                topic,
                per_sender,
                detail,
            )
        self.emit(
            ev.Rejected(reason=reason, sender=sender, topic=topic, detail=detail, count=total)
        )

    async def _on_pubsub_message(self, msg: PubsubMessage) -> None:
        from protocol.envelope import open_envelope
        from protocol.errors import ProtocolError

        topic = msg.topic
        entry = self._topics.get(topic)
        if entry is None or entry.relay_only:
            return  # left the topic while the message was queued, or only relaying it
        try:
            env = open_envelope(msg.data, expected_sender=msg.from_id)
        except ProtocolError as exc:
            text = _plain_text(msg.data)
            if (
                topic != MESH_TOPIC
                and text is not None
                and exc.reason in ("not_msgpack", "bad_type")
            ):
                # A plain `publish <topic> <msg>` from a console: shown, not a protocol message.
                if self.role != "bootstrap":
                    self.emit(ev.Message(topic=topic, sender=msg.sender, kind="text", text=text))
                return
            self.reject(exc.reason, msg.sender, topic, str(exc))
            return
        try:
            self._replay.check(env)
        except ProtocolError as exc:
            self.reject(exc.reason, msg.sender, topic, str(exc))
            return
        if topic == MESH_TOPIC:
            await self._on_mesh_envelope(env, msg)
            return
        if entry.handler is not None:
            await entry.handler(env)
        elif self.role != "bootstrap":
            self.emit(ev.Message(topic=topic, sender=msg.sender, kind=env.kind, text=_summary(env)))

    async def _on_mesh_envelope(self, env: Envelope, msg: PubsubMessage) -> None:
        kind = env.kind
        if kind == "presence":
            self._apply_presence(msg.sender, env)
        elif kind == "bootmesh":
            self._apply_bootmesh(msg.sender, env)
        else:
            handler = self._mesh_handlers.get(kind)
            if handler is not None:
                await handler(env)
            elif self.role != "bootstrap":
                self.emit(
                    ev.Message(topic=MESH_TOPIC, sender=msg.sender, kind=kind, text=_summary(env))
                )

    # ------------------------------------------------------------------------------------------
    # presence, bootmesh, peers (g)
    # ------------------------------------------------------------------------------------------

    def set_presence(self, model: str = "", backend: str = "") -> None:
        """Change what this node announces (model/backend) and re-announce it (any side)."""
        self.model, self.backend = model, backend
        if self._host is not None and self._role_impl is not None:
            try:
                self.bridge.start_soon(self.publish_presence)
            except Exception:
                logger.debug("presence not re-published (not running)")

    async def publish_presence(self) -> None:
        from protocol.messages import Presence

        body = Presence(
            name=self.config.name[:128],
            role=self.role,
            model=self.model[:128],
            backend=self.backend[:128],
            addrs=tuple(self.host.addrs()[:16]),
        )
        try:
            await self.publish_envelope(MESH_TOPIC, body)
        except Exception as exc:
            logger.warning("presence not published: %s", exc)

    def _record(self, peer: str) -> _PeerRecord:
        rec = self._peers.get(peer)
        if rec is None:
            rec = self._peers[peer] = _PeerRecord(peer)
        return rec

    def _apply_presence(self, sender: str, env: Envelope) -> None:
        body = env.body
        rec = self._record(sender)
        if env.seq <= rec.presence_seq:
            return  # an older announcement delivered late
        rec.presence_seq = env.seq
        changed = (rec.name, rec.role, rec.model, rec.backend) != (
            body.name,
            body.role,
            body.model,
            body.backend,
        )
        rec.name, rec.role, rec.model, rec.backend = body.name, body.role, body.model, body.backend
        rec.addrs = tuple(body.addrs)
        if changed and sender in self._known:
            self._emit_peer_info(rec, "connected")
        if self._role_impl is not None:
            self._role_impl.on_presence(sender, rec)
        self._mark_peers_dirty()

    def note_peer(
        self,
        peer: str,
        *,
        name: str = "",
        role: str = "",
        model: str = "",
        backend: str = "",
        addrs: tuple[str, ...] = (),
    ) -> None:
        """What a third party (the bootstrap's peer list) says about a peer whose own presence
        we have not received; a presence from the peer itself always wins."""
        if peer == self.peer_id_str:
            return
        rec = self._record(peer)
        if rec.presence_seq >= 0:
            return
        new = (name or rec.name, role or rec.role, model or rec.model, backend or rec.backend)
        changed = new != (rec.name, rec.role, rec.model, rec.backend)
        rec.name, rec.role, rec.model, rec.backend = new
        rec.addrs = addrs or rec.addrs
        if changed and peer in self._known:
            self._emit_peer_info(rec, "connected")

    def has_presence(self, peer: str) -> bool:
        rec = self._peers.get(peer)
        return rec is not None and bool(rec.name)

    def _apply_bootmesh(self, sender: str, env: Envelope) -> None:
        from protocol.identity import peer_id_to_str

        if self.role == "bootstrap":
            return
        if self._bootstrap_id is not None and sender != self._bootstrap_id:
            self.reject(
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
        self.emit(ev.Bootmesh(topics=dict(topics)))
        if self._role_impl is not None:
            self._role_impl.on_bootmesh(topics)
        self._mark_peers_dirty()

    def bootmesh(self) -> dict[str, list[str]]:
        return dict(self._bootmesh)

    def mesh(self) -> dict[str, list[str]]:
        return self.host.mesh()

    def set_bootstrap_id(self, peer: str | None) -> None:
        """The hub this node routes through (providers: their bootstrap)."""
        self._bootstrap_id = peer
        if self._host is not None:
            self._host.set_hub(peer)

    @property
    def bootstrap_id(self) -> str | None:
        """Base58 ID of this node's bootstrap (None on the bootstrap itself)."""
        return self._bootstrap_id

    def peers(self) -> list[PeerView]:
        """(g) Every peer currently known online, with its presence and last RTT."""
        host = self._host
        out = []
        for peer in sorted(self._known):
            rec = self._peers.get(peer) or _PeerRecord(peer)
            role = rec.role or ("bootstrap" if peer == self._bootstrap_id else "")
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
                )
            )
        return out

    def provider_peers(self) -> list[PeerView]:
        return [
            p for p in self.peers() if p.role != "bootstrap" and p.peer_id != self._bootstrap_id
        ]

    def _known_now(self) -> set[str]:
        known = set(self.host.connected_peers())
        if self.role != "bootstrap" and self._bootstrap_id in known:
            # Through the bootstrap we know everyone it sees on swarm/mesh.
            known.update(self._bootmesh.get(MESH_TOPIC, ()))
        known.discard(self.peer_id_str)
        return known

    def _emit_peer_info(self, rec: _PeerRecord, state: str) -> None:
        self.emit(
            ev.PeerInfo(
                peer_id=rec.peer_id,
                model=rec.model,
                backend=rec.backend,
                rtt_ms=None if rec.rtt_ms is None else round(rec.rtt_ms, 2),
                state=state,
                name=rec.name,
            )
        )

    # -- change notifications from the host (sync, trio side) ---------------------------------

    def _on_peer_change(self, peer: str, what: str) -> None:
        if what == "connected":
            self._record(peer).last_ok = time.monotonic()
        if self._role_impl is not None:
            self._role_impl.on_connection(peer, what)
        self._mark_peers_dirty()
        self._on_topology_change()

    def _mark_peers_dirty(self) -> None:
        if self._peers_dirty is not None:
            self._peers_dirty.set()

    def _on_topology_change(self) -> None:
        if self._role_impl is not None:
            self._role_impl.on_subscriptions()
        if self._topology_dirty is not None:
            self._topology_dirty.set()

    async def _peer_watch_loop(self) -> None:
        import trio

        while True:
            await self._peers_dirty.wait()
            self._peers_dirty = trio.Event()
            # let libp2p finish its own bookkeeping of the connection change first
            await trio.sleep(0.01)
            known = self._known_now()
            joined, left = known - self._known, self._known - known
            self._known = known
            for peer in sorted(joined):
                rec = self._record(peer)
                self.emit(ev.PeerJoined(peer_id=peer, addr=self.host.peer_addr(peer)))
                self._emit_peer_info(rec, "connected")
            for peer in sorted(left):
                rec = self._record(peer)
                rec.rtt_ms = None
                self.emit(ev.PeerLeft(peer_id=peer))
                self._emit_peer_info(rec, "lost")

    async def _topology_loop(self) -> None:
        import trio

        while True:
            await self._topology_dirty.wait()
            # debounce: a burst of subscription changes becomes one update
            await trio.sleep(TOPOLOGY_DEBOUNCE_S)
            self._topology_dirty = trio.Event()
            if self._role_impl is not None:
                await self._role_impl.on_topology()
            view = self.host.mesh()
            if view != self._mesh_view:
                self._mesh_view = view
                self.emit(ev.Mesh(topics=view))

    async def _heartbeat_loop(self) -> None:
        """pitfall 7: hung peers are not detected by libp2p; ping every connected peer."""
        import trio

        from node.host import HostError

        hung_after = self.config.hung_after

        async def probe(peer: str) -> None:
            rec = self._record(peer)
            if not rec.last_ok:
                rec.last_ok = time.monotonic()
            try:
                rtt = await self.host.ping_once(peer, timeout=min(HEARTBEAT_TIMEOUT_S, hung_after))
            except HostError as exc:
                silent = time.monotonic() - rec.last_ok
                logger.debug("heartbeat %s missed (silent %.1f s): %s", peer[-6:], silent, exc)
                if silent >= hung_after and self.host.is_connected(peer):
                    logger.warning(
                        "peer %s has not answered pings for %.0f s; dropping it", peer[-6:], silent
                    )
                    await self.host.disconnect(peer)
                    self._mark_peers_dirty()
                return
            first = rec.rtt_ms is None
            rec.last_ok = time.monotonic()
            rec.rtt_ms = rtt
            if first and peer in self._known:
                self._emit_peer_info(rec, "connected")

        while True:
            await trio.sleep(min(HEARTBEAT_INTERVAL_S, hung_after / 3))
            async with trio.open_nursery() as nursery:
                for peer in self.host.connected_peers():
                    nursery.start_soon(probe, peer)


def build_runtime(args: Any, config: NodeConfig) -> NodeRuntime:
    """The node for parsed node flags: runtime + model backend + ``slm`` + sessions (if present).

    Used by headless mode and the console alike. Raises :class:`RuntimeError_` with a clear
    message for a bad configuration (data dir in use, unusable key, bad backend flags).
    """
    runtime = NodeRuntime(config)
    runtime.claim_identity()  # settles config.name (node, node-2...) before the backend is named
    if config.role == "bootstrap":
        return runtime
    try:
        from node.slm.base import SLMError
        from node.slm.command import register_slm_command
        from node.slm.config import backend_from_args
    except ImportError:
        return runtime
    try:
        backend = backend_from_args(args, runtime.config.name)
    except SLMError as exc:
        runtime._release_lock()
        raise RuntimeError_(str(exc)) from exc
    runtime.slm_backend = backend
    runtime.model, runtime.backend = backend.model, backend.backend
    register_slm_command(runtime.interpreter, backend)
    try:
        from node.sessions import attach_sessions
    except ImportError:
        pass  # the sessions engine is optional until it lands
    else:
        attach_sessions(runtime, backend, args)
    return runtime


class EventLogHandler(logging.Handler):
    """Log records -> ``log`` events (the console's log pane; ``--json`` stdout)."""

    def __init__(self, runtime: NodeRuntime, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.runtime = runtime

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                message += f" ({record.exc_info[0].__name__}: {record.exc_info[1]})"
            self.runtime.emit(ev.Log(level=record.levelname, logger=record.name, message=message))
        except Exception:
            self.handleError(record)


def setup_logging(
    level: str = "info",
    *,
    runtime: NodeRuntime | None = None,
    stream: Any = None,
    log_file: str | None = None,
) -> None:
    """Route all logging (libp2p's included) to one place; nothing else writes to stderr.

    ``runtime``: log records become ``log`` events; ``log_file``: appended to a file; otherwise
    ``stream`` (default stderr) gets plain lines. Call it again after libp2p is imported —
    ``NodeRuntime.start`` does — because importing libp2p resets its loggers (pitfall 8).
    """
    global _LOG_SETUP
    handlers: list[logging.Handler] = []
    if runtime is not None:
        handlers.append(EventLogHandler(runtime))
    if log_file is not None:
        fh = logging.FileHandler(log_file, encoding="utf-8")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handlers.append(fh)
    if not handlers:
        sh = logging.StreamHandler(stream if stream is not None else sys.stderr)
        sh.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        handlers.append(sh)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # warnings.warn -> logging, not raw stderr
    _LOG_SETUP = level
    tame_libp2p_logging()


_LOG_SETUP: str | None = None


def tame_libp2p_logging() -> None:
    """pitfall 8: libp2p's loggers get no handler and propagate=False at import, so Python's
    last-resort handler prints its warnings raw to stderr. Send them through ours instead."""
    if "libp2p" not in sys.modules:
        return
    verbose = _LOG_SETUP == "debug"
    lg = logging.getLogger("libp2p")
    lg.handlers.clear()
    lg.propagate = True
    # libp2p is chatty at WARNING about ordinary churn (a peer going away); show it only on debug
    lg.setLevel(logging.INFO if verbose else logging.ERROR)
    # every failed dial (a bootstrap not up yet) is an ERROR there; we report dials ourselves
    logging.getLogger("libp2p.transport").setLevel(logging.INFO if verbose else logging.CRITICAL)
    logging.getLogger("libp2p.network.auto_connector").setLevel(logging.WARNING)


def _check_topic(topic: str) -> None:
    if not topic or len(topic) > 128 or any(c.isspace() for c in topic):
        raise RuntimeError_(f"bad topic name {topic!r} (1-128 characters, no spaces)")


def _plain_text(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(ord(c) < 32 and c not in "\t\n\r" for c in text):
        return None
    return text


def _summary(env: Envelope) -> str:
    body = env.body
    for attr in ("text", "prompt", "reason", "name"):
        value = getattr(body, attr, None)
        if isinstance(value, str) and value:
            return f"{env.kind}: {value[:200]}"
    return f"{env.kind} (task {env.task or '-'})"
