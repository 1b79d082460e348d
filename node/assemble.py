"""The composition root: one node built from its resolved settings, started, served, closed.

Headless mode, the console, ``rnet pipe`` and ``rnet serve`` all run a node through
:class:`AssembledNode`::

    node = assemble(args, config)          # NodeError for a bad configuration
    async with node:                       # start; the gateway too with --serve
        problem = await node.probe_backend()
        ...
    # closed: gateway, then runtime (host, trio, data-dir lock), then the model backend

A provider gets its model backend, the ``slm`` command and the session engine (with its store);
the bootstrap runs the runtime alone.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING

from node import events as ev
from node.commands.slm import register_slm_command
from node.config import NodeConfig
from node.errors import ConfigError, NodeError
from node.gateway_settings import announce, gateway_settings
from node.guard_flags import guard_config_from_args, members_mode_from_args
from node.reputation import Book, register_reputation_command
from node.runtime.node import NodeRuntime
from node.sessions.engine import SessionEngine
from node.sessions.options import options_from_args
from node.sessions.slots import default_slots
from node.settings import Environment
from node.slm.base import Backend, SLMError
from node.slm.config import backend_from_args
from node.store import Store

if TYPE_CHECKING:
    from node.gateway.server import GatewayHandle

logger = logging.getLogger(__name__)

GATEWAY_CLOSE_TIMEOUT_S = 2.0
# A model that did not answer is asked again after 5 s, then twice as long, at most each minute.
REPROBE_FIRST_S = 5.0
REPROBE_MAX_S = 60.0


def unavailable_status(exc: SLMError, backend: Backend) -> str:
    """The presence ``status`` of a node whose model does not answer: short (the Peers pane
    shows it), what is wrong rather than the whole hint."""
    if exc.kind == "unreachable":
        text = f"no model: nothing answers at {getattr(backend, 'host', '?')}"
    elif exc.kind == "model_missing":
        text = f"no model: {backend.model} is not pulled"
    else:
        text = f"no model: {exc}"
    return text[:128]


class AssembledNode:
    """A runtime with what the node's role needs around it, and one lifecycle for all of it."""

    def __init__(
        self,
        runtime: NodeRuntime,
        *,
        backend: Backend | None = None,
        engine: SessionEngine | None = None,
        args: argparse.Namespace | None = None,
    ) -> None:
        self.runtime = runtime
        self.backend = backend
        self.engine = engine
        self.args = args
        self.gateway: GatewayHandle | None = None
        self._probe: asyncio.Task[str | None] | None = None
        self._reprobe_task: asyncio.Future[None] | None = None
        self._closed = False

    @property
    def simulated(self) -> bool:
        return bool(self.backend is not None and self.backend.simulated)

    def backend_label(self) -> str:
        """Short label: ``sim/honest`` (shown with SIMULATED) or ``ollama qwen2.5:1.5b``."""
        backend = self.backend
        if backend is None:
            return ""
        if backend.simulated:
            return str(backend.model)
        return f"{backend.backend} {backend.model}"

    # -- lifecycle (asyncio side) ---------------------------------------------------------------

    async def start(self) -> None:
        """Start the runtime (returns once it listens; ``ready`` follows as an event)."""
        await self.runtime.start()

    async def serve_gateway(self) -> GatewayHandle | None:
        """``--serve ADDR`` / ``rnet serve``: the gateway on this node (None when not asked).

        Raises ValueError (bad address or option, public bind without a token) or OSError.
        """
        args = self.args
        if args is None or not getattr(args, "serve", None):
            return None
        # aiohttp is heavy: the gateway package is loaded only when a gateway is served.
        from node.gateway.adapter import start_gateway

        listen, options = gateway_settings(args)
        self.gateway = await start_gateway(self.runtime, self.engine, listen, **options)
        if getattr(args, "no_ui", False):
            # Headless: stdout is ours. Under the console it is the screen: the console shows it.
            announce(bool(getattr(args, "json", False)), self.gateway.url, options)
        return self.gateway

    async def probe_backend(self) -> str | None:
        """Whether the model can answer, asked once per node (later calls share the answer).

        A failure is an ``error`` event and the returned message. The node still runs (it
        relays and leads) but takes no executor or verifier role, says so in its presence, and
        asks the model again with backoff (:meth:`_reprobe`) until it answers, then joins
        sessions again. None when the model answers or is simulated.
        """
        if self._probe is None:
            self._probe = asyncio.ensure_future(self._check_backend())
        return await asyncio.shield(self._probe)

    async def _check_backend(self) -> str | None:
        backend = self.backend
        if backend is None or backend.simulated:
            return None
        try:
            await backend.check()
        except SLMError as exc:
            self.runtime.emit(ev.Error(message=str(exc), source="slm"))
            self._set_unavailable(unavailable_status(exc, backend))
            logger.warning(
                "this node takes no executor or verifier role until its model answers (asked "
                "again every minute at most); it still relays and can lead sessions"
            )
            self._reprobe_task = asyncio.ensure_future(self._reprobe(backend))
            return str(exc)
        # check() learned what the model can do (tools or not): announce it.
        self.runtime.set_presence(
            backend.model, backend.backend, capabilities=tuple(backend.capabilities)
        )
        return None

    def _set_unavailable(self, status: str) -> None:
        if self.engine is not None:
            self.engine.unavailable = status
        rt = self.runtime
        # a model that answers again may have been swapped: announce what check() learned
        capabilities = tuple(self.backend.capabilities) if self.backend is not None else None
        rt.set_presence(rt.model, rt.backend, status, capabilities)

    async def _reprobe(self, backend: Backend) -> None:
        """Ask the model again (5 s, 10 s, ... at most every minute) until it answers."""
        delay = REPROBE_FIRST_S
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, REPROBE_MAX_S)
            try:
                await backend.check()
            except SLMError as exc:
                logger.debug("the model still does not answer: %s", exc)
                continue
            logger.info("the model answers now (%s): taking session roles again", backend.model)
            self._set_unavailable("")
            return

    async def aclose(self) -> None:
        """Gateway, then runtime (host, trio, data-dir lock), then the model client. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for task in (self._probe, self._reprobe_task):
            if task is not None and not task.done():
                task.cancel()
        try:
            if self.gateway is not None:
                try:
                    await asyncio.wait_for(self.gateway.close(), GATEWAY_CLOSE_TIMEOUT_S)
                except Exception:
                    logger.exception("closing the gateway failed")
            await self.runtime.aclose()
        finally:
            if self.backend is not None:
                try:
                    await self.backend.aclose()
                except Exception:
                    logger.debug("closing the model backend failed", exc_info=True)

    async def __aenter__(self) -> AssembledNode:
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def assemble(args: argparse.Namespace, config: NodeConfig) -> AssembledNode:
    """The node for parsed node flags: runtime (+ model backend, ``slm`` and the session engine
    on a provider). Claims the data dir at once (so ``config.name`` is final: node, node-2...).

    Raises :class:`NodeError` with a clear message for a bad configuration (data dir in use,
    unusable key, bad backend or session flags); nothing is left locked then.
    """
    runtime = NodeRuntime(config)
    runtime.claim_identity()
    try:
        runtime.guard_config = guard_config_from_args(args)
        runtime.members_mode = members_mode_from_args(args)
    except ConfigError as exc:
        runtime.release_identity()
        raise NodeError(str(exc)) from exc
    if config.role == "bootstrap":
        return AssembledNode(runtime, args=args)
    try:
        backend = backend_from_args(args, runtime.config.name)
        runtime.model, runtime.backend = backend.model, backend.backend
        runtime.capabilities = tuple(backend.capabilities)
        register_slm_command(runtime.interpreter, backend)
        options = options_from_args(args)
        if not options.slots:
            options = replace(options, slots=default_slots(backend.backend, Environment()))
        engine = SessionEngine(
            runtime,
            backend,
            Store.in_data_dir(runtime.config.data_dir),
            options,
        )
        engine.first_seen = runtime.directory.first_seen.ms  # the leader's newcomer rule
        engine.slots.announce = runtime.set_slots
        runtime.set_slots(engine.slots.last)  # presence says what this provider offers
        # the reputation book (issue 16): weights for the sessions led here, counted from
        # each finished session's stored envelopes, the `rep` command
        book = Book(engine.store, None)
        engine.reputation = engine.transcript.book = book
        register_reputation_command(runtime.interpreter, book)
        engine.attach()
    except (SLMError, ValueError) as exc:  # a bad backend or session flag
        runtime.release_identity()
        raise NodeError(str(exc)) from exc
    except BaseException:
        runtime.release_identity()
        raise
    return AssembledNode(runtime, backend=backend, engine=engine, args=args)
