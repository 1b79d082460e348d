"""What the session engine needs from the node it runs on, and its clocks.

The engine is typed against :class:`SessionHost`, a structural ``Protocol``: ``NodeRuntime``
satisfies it, and so does a small stand-in in the tests. Nothing here imports the runtime, so
the runtime (or the composition root) may import the engine without a cycle.

Clocks: the machines of :mod:`protocol.session` run on :func:`mono_ms` (monotonic: a wall-clock
jump must not expire or stretch a deadline). Wall time (:func:`wall_ms`) is only for what a
person reads: the store's timestamps and the deadlines the console shows (converted at the view).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    import trio

    from node import events as ev
    from protocol.envelope import Envelope
    from protocol.messages import Body

T = TypeVar("T")
EnvelopeHandler = Callable[["Envelope"], Awaitable[None]]
CommandHandler = Callable[[Any, list[str]], Awaitable[str]]


def mono_ms() -> int:
    """The engine's clock for the machines: monotonic milliseconds."""
    return time.monotonic_ns() // 1_000_000


def wall_ms() -> int:
    """Wall-clock epoch milliseconds: only for what is shown or stored for people."""
    return time.time_ns() // 1_000_000


def to_wall_ms(mono: int | None) -> int | None:
    """A :func:`mono_ms` instant as wall-clock epoch ms (the console shows wall time)."""
    if mono is None:
        return None
    return wall_ms() + (mono - mono_ms())


class HubStatus(Protocol):
    def hub_connected(self) -> bool: ...


class ProviderPeer(Protocol):
    @property
    def peer_id(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def status(self) -> str: ...


class CommandRegistry(Protocol):
    def register(self, name: str, usage: str, help: str, handler: CommandHandler) -> None: ...


class SessionHost(Protocol):
    """The runtime's extension points the engine uses (all trio side except ``call``)."""

    peer_id: bytes
    nursery: trio.Nursery
    host: HubStatus
    interpreter: CommandRegistry

    def emit(self, event: ev.Event) -> None: ...
    def reject(self, reason: str, sender: str, topic: str, detail: str = "") -> None: ...
    async def join_topic(self, topic: str, handler: EnvelopeHandler | None = None) -> bool: ...
    async def leave_topic(self, topic: str) -> bool: ...
    async def publish_envelope(self, topic: str, body: Body, task: str = "") -> Envelope: ...
    async def run_asyncio(
        self, coro_fn: Callable[..., Coroutine[Any, Any, T]], *args: Any
    ) -> T: ...
    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T: ...
    def add_mesh_handler(self, kind: str, handler: EnvelopeHandler) -> None: ...
    def on_close(self, fn: Callable[[], Awaitable[None]]) -> None: ...
    def provider_peers(self) -> Sequence[ProviderPeer]: ...


class ReputationSource(Protocol):
    """What the engine asks of a reputation book (``node.reputation.Book`` is one)."""

    def verifier_weights(self) -> dict[bytes, float]: ...
    def selection_weights(self) -> dict[bytes, float]: ...
