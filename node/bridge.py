"""The asyncio <-> trio crossing: trio runs as a guest on the running asyncio loop.

py-libp2p is trio-only while the console (Textual) and the model clients (httpx) are asyncio, so
one process runs both: asyncio is the host loop and trio is started with
``trio.lowlevel.start_guest_run`` on it. Both run on the same thread, so the crossing is about
*scheduling*, not locking:

- asyncio -> trio: ``await bridge.run(fn, *args)`` schedules ``fn`` in the bridge's trio nursery
  (through the trio token) and awaits its result as an asyncio future; cancelling the asyncio
  side cancels the trio task. ``bridge.start_soon(fn, *args)`` starts a background trio task.
- trio -> asyncio: ``await bridge.run_asyncio(coro_fn, *args)`` runs a coroutine as an asyncio
  task and awaits it from trio; cancelling the trio side cancels the asyncio task.
  ``bridge.call_soon_asyncio(fn, *args)`` schedules a plain callback on the asyncio loop (used to
  hand events to the UI).

This module is the only place that touches both event loops.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import outcome
import trio

logger = logging.getLogger(__name__)

T = TypeVar("T")


class BridgeClosed(RuntimeError):
    """The trio guest run is not running (not started yet, or already stopped)."""


class TrioBridge:
    """One trio guest run on the current asyncio loop, with a nursery for background tasks."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._done: asyncio.Future[outcome.Outcome[None]] | None = None
        self._closing = False

    # -- lifecycle (asyncio side) -------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._nursery is not None and not self._closing

    @property
    def loop_or_none(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise BridgeClosed("bridge not started")
        return self._loop

    @property
    def nursery(self) -> trio.Nursery:
        """The guest run's root nursery (trio side): long-lived background tasks go here."""
        if self._nursery is None:
            raise BridgeClosed("bridge not started")
        return self._nursery

    async def start(self) -> None:
        """Start the trio guest run on the running asyncio loop; returns once trio is up."""
        if self._loop is not None:
            raise RuntimeError("bridge already started")
        loop = asyncio.get_running_loop()
        self._loop = loop
        started: asyncio.Future[None] = loop.create_future()
        self._done = loop.create_future()

        async def guest_main() -> None:
            self._token = trio.lowlevel.current_trio_token()
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                loop.call_soon_threadsafe(_set_result_if_pending, started, None)
                # The root task just waits; aclose() cancels the nursery to end the run.
                await trio.sleep_forever()

        def done_callback(result: outcome.Outcome[None]) -> None:
            self._nursery = None
            if not self._done.done():
                self._done.set_result(result)
            if not started.done():
                # The run died before it came up: surface that to start().
                exc = getattr(result, "error", None) or BridgeClosed("trio run ended early")
                started.set_exception(exc)

        trio.lowlevel.start_guest_run(
            guest_main,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=done_callback,
            # asyncio owns signal handling (and the wakeup fd); trio must not steal it.
            host_uses_signal_set_wakeup_fd=True,
            strict_exception_groups=True,
        )
        await started

    def run_ended(self) -> asyncio.Future[Any] | None:
        """Resolves with the trio run's outcome once it ends, for whatever reason (None before
        ``start``): an owner that did not ask for the end can notice it and stop."""
        return self._done

    async def aclose(self) -> None:
        """Cancel every trio task and wait for the guest run to finish. Idempotent.

        Owners close their trio resources (the libp2p host) *before* calling this, because a
        cancelled nursery does not close dialed sockets.
        """
        if self._done is None:
            return
        self._closing = True
        nursery, token = self._nursery, self._token
        if nursery is not None and token is not None:
            try:
                token.run_sync_soon(nursery.cancel_scope.cancel)
            except trio.RunFinishedError:
                pass
        result = await asyncio.shield(self._done)
        error = getattr(result, "error", None)
        if error is not None and not _only_cancelled(error):
            logger.error("trio guest run ended with an error: %r", error)

    # -- asyncio -> trio ---------------------------------------------------------------------

    def _schedule(self, fn: Callable[[], object]) -> None:
        if self._token is None or self._nursery is None or self._closing:
            raise BridgeClosed("trio is not running")
        try:
            self._token.run_sync_soon(fn)
        except trio.RunFinishedError as exc:
            raise BridgeClosed("trio is not running") from exc

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await fn(*args)`` in trio and return its result to the awaiting asyncio task."""
        loop = self.loop
        future: asyncio.Future[T] = loop.create_future()
        scope_box: list[trio.CancelScope] = []

        async def runner() -> None:
            with trio.CancelScope() as scope:
                scope_box.append(scope)
                if future.cancelled():
                    return
                try:
                    value = await fn(*args)
                except trio.Cancelled:
                    loop.call_soon_threadsafe(_cancel_if_pending, future)
                    raise
                except Exception as exc:  # handed to the awaiting side, not swallowed
                    loop.call_soon_threadsafe(_set_exception_if_pending, future, exc)
                    return
                loop.call_soon_threadsafe(_set_result_if_pending, future, value)
            if scope.cancelled_caught:
                loop.call_soon_threadsafe(_cancel_if_pending, future)

        self._schedule(lambda: self.nursery.start_soon(runner))
        try:
            return await future
        except asyncio.CancelledError:
            if scope_box and self._token is not None:
                try:
                    self._token.run_sync_soon(scope_box[0].cancel)
                except trio.RunFinishedError:
                    pass
            raise

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any, name: str = "") -> None:
        """Start ``fn(*args)`` as a background trio task in the bridge nursery (asyncio side)."""
        self._schedule(lambda: self.nursery.start_soon(fn, *args, name=name or None))

    # -- trio -> asyncio ---------------------------------------------------------------------

    def call_soon_asyncio(self, fn: Callable[..., object], *args: Any) -> None:
        """Schedule a plain callback on the asyncio loop (safe from either side)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(functools.partial(fn, *args))

    async def run_asyncio(self, coro_fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """From trio: run ``coro_fn(*args)`` as an asyncio task and await its result.

        Use it for asyncio-only clients (ollama/httpx). Cancelling the trio caller cancels the
        asyncio task.
        """
        loop = self.loop
        token = trio.lowlevel.current_trio_token()
        finished = trio.Event()
        task = loop.create_task(coro_fn(*args))

        def on_done(_: asyncio.Task[T]) -> None:
            try:
                token.run_sync_soon(finished.set)
            except trio.RunFinishedError:
                pass

        task.add_done_callback(on_done)
        try:
            await finished.wait()
        except trio.Cancelled:
            task.cancel()
            raise
        return task.result()


def run_end_cause(result: outcome.Outcome[Any]) -> str:
    """One line saying why a trio run ended (its outcome from :meth:`TrioBridge.run_ended`):
    the innermost error of single-error groups, as ``Type: message``. What the headless node
    and the console print when the network side stops by itself."""
    error = getattr(result, "error", None)
    if error is None:
        return "it ended without an error"
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return f"{type(error).__name__}: {error}"


def _only_cancelled(error: BaseException) -> bool:
    if isinstance(error, trio.Cancelled):
        return True
    if isinstance(error, BaseExceptionGroup):
        return all(_only_cancelled(e) for e in error.exceptions)
    return False


def _set_result_if_pending(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception_if_pending(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _cancel_if_pending(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.cancel()
