"""The gateway's request queue: sessions run as the swarm's capacity allows, the rest wait.

Like Ollama (``OLLAMA_MAX_QUEUE``), requests beyond what can run now wait in a bounded FIFO
queue; only a full queue refuses (503 with ``Retry-After``). A request whose client disconnects
while waiting leaves the queue (aiohttp cancels its handler, the wait ends, the place is freed).

How many sessions run at once: the swarm's capacity, ``capacity()`` (the providers' model slots
divided by the slots one session holds at its busiest, at least 1; see
``adapter.RuntimeSwarm.capacity``), never more than ``max_in_flight``. A session holding a turn that ends, for whatever reason,
hands the turn to the oldest waiting request.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from node.gateway.config import GatewayConfig

__all__ = ["DEFAULT_SESSION_S", "QueueFull", "SessionQueue", "session_queue"]

log = logging.getLogger(__name__)

# Before any session finished, a waiting request is told to retry after about this long.
DEFAULT_SESSION_S = 2.0
_EWMA = 0.2  # weight of the newest session in the running mean of session durations


class QueueFull(Exception):
    """Every place in the queue is taken: retry after ``retry_after_s`` seconds."""

    def __init__(self, waiting: int, retry_after_s: int) -> None:
        super().__init__(f"busy: the queue is full ({waiting} requests wait for the swarm)")
        self.waiting = waiting
        self.retry_after_s = retry_after_s


class SessionQueue:
    """FIFO admission of requests to swarm sessions (asyncio, one event loop)."""

    def __init__(
        self,
        max_queue: int,
        capacity: Callable[[], int],
        on_change: Callable[[int, int, int], None] | None = None,
    ) -> None:
        if max_queue < 0:
            raise ValueError("max_queue must be >= 0")
        self.max_queue = max_queue
        self._capacity = capacity
        self._on_change = on_change  # (running, waiting, capacity), for the console
        self._shown = (0, 0)
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.running = 0
        self.session_s = DEFAULT_SESSION_S  # running mean of how long a turn lasts

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._waiters if not f.done())

    def capacity(self) -> int:
        try:
            return max(1, int(self._capacity()))
        except Exception:
            return 1  # a broken estimate must not stop the gateway: one at a time

    def retry_after_s(self) -> int:
        """Seconds until a place is likely free: the queue ahead, drained at capacity."""
        rounds = (self.waiting + 1) / self.capacity()
        return max(1, math.ceil(rounds * self.session_s))

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wait for this request's turn (raises :class:`QueueFull`); hold it inside the block."""
        await self._acquire()
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            yield
        finally:
            elapsed = loop.time() - started
            self.session_s = (1 - _EWMA) * self.session_s + _EWMA * elapsed
            self._release()

    async def _acquire(self) -> None:
        if not self.waiting and self.running < self.capacity():
            self.running += 1
            self._changed()
            return
        if self.waiting >= self.max_queue:
            raise QueueFull(self.waiting, self.retry_after_s())
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._changed()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # granted as the client left: pass the turn on
            else:
                try:
                    self._waiters.remove(waiter)  # the client left the queue
                except ValueError:
                    pass  # already skipped by _wake
                self._changed()
            raise

    def _release(self) -> None:
        self.running -= 1
        self._wake()
        self._changed()

    def _changed(self) -> None:
        now = (self.running, self.waiting)
        if now == self._shown or self._on_change is None:
            return
        self._shown = now
        try:
            self._on_change(self.running, self.waiting, self.capacity())
        except Exception:
            log.exception("gateway: reporting the queue failed")

    def _wake(self) -> None:
        while self._waiters and self.running < self.capacity():
            waiter = self._waiters.popleft()
            if waiter.done():
                continue
            self.running += 1
            waiter.set_result(None)


def session_queue(sessions: object, config: GatewayConfig) -> SessionQueue:
    """The queue of one gateway: capacity from the swarm (``sessions.capacity(providers)``,
    optional on a SwarmSessions) within ``max_in_flight``."""
    estimate = getattr(sessions, "capacity", None)

    def capacity() -> int:
        swarm = estimate(config.providers) if callable(estimate) else None
        return config.max_in_flight if not swarm else min(config.max_in_flight, int(swarm))

    notify = getattr(sessions, "queue_changed", None)
    return SessionQueue(config.max_queue, capacity, notify if callable(notify) else None)
