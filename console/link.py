"""The console's only door to a node: start/stop it, run command lines, receive events.

``NodeLink`` is what the App needs; ``RuntimeLink`` (in ``console.runtime_link``) adapts the real
``node.runtime.NodeRuntime``; ``ScriptedLink`` here is a network-free stand-in that tests,
benchmarks and demos drive with events (``node.events``) or their ``to_dict()`` forms.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from node.commands.interpreter import Handler

logger = logging.getLogger(__name__)

EventCallback = Callable[[Any], None]

#: Interpreter commands and their usage lines (ARCHITECTURE §9), for the scripted stand-in.
SCRIPTED_USAGE: dict[str, str] = {
    "help": "help [command]",
    "local": "local",
    "connect": "connect <maddr>",
    "ping": "ping <maddr> <count>",
    "peers": "peers",
    "fsub": "fsub <maddr>",
    "join": "join <topic>",
    "leave": "leave <topic>",
    "publish": "publish <topic> <msg>",
    "topics": "topics",
    "fpeers": "fpeers",
    "bootmesh": "bootmesh",
    "mesh": "mesh",
    "slm": "slm <prompt>",
    "adv": "adv <topic> [prompt]",
    "ack": "ack <topic> [prompt]",
    "finalize": "finalize <topic>",
    "pipe": "pipe <provider_count> [prompt]",
}
_MIN_ARGS = {
    "connect": 1,
    "ping": 2,
    "fsub": 1,
    "join": 1,
    "leave": 1,
    "publish": 2,
    "slm": 1,
    "adv": 1,
    "ack": 1,
    "finalize": 1,
    "pipe": 1,
}


@dataclass(frozen=True, slots=True)
class ExtraCommand:
    """A console-only interpreter command (``rnet up`` adds ``children`` and ``logs``)."""

    name: str
    usage: str
    help: str
    handler: Handler


class NodeLink(Protocol):
    """What the App needs from a node. Every method is called on the App's asyncio loop."""

    def subscribe(self, callback: EventCallback) -> None:
        """Deliver every event (an event object or its dict form) to ``callback``."""

    async def start(self) -> None:
        """Start the node (may take a second: libp2p import, listen, dial)."""

    async def aclose(self) -> None:
        """Stop the node; idempotent."""

    async def run_command(self, line: str) -> None:
        """Run one interpreter command line; its output arrives as a ``command_output`` event."""

    def command_names(self) -> list[str]:
        """Names of the registered commands (for completion and help)."""

    async def network_lost(self) -> str | None:
        """Wait until the node's network side stops; return why if it stopped by itself, None
        if the console closed it (called once the node has started)."""

    def offline_commands(self) -> frozenset[str]:
        """Commands that work without the network side (still accepted once it is gone)."""


class ScriptedLink:
    """A node stand-in: ``emit()`` pushes events; commands are recorded and answered with the
    real usage lines for bad arguments, so console behaviour can be tested without a network."""

    def __init__(self, events: Iterable[dict[str, Any]] = (), *, names: Iterable[str] = ()) -> None:
        self.callbacks: list[EventCallback] = []
        self.commands: list[str] = []
        self.started = False
        self.closed = False
        self._initial = list(events)
        self._names = list(names) or list(SCRIPTED_USAGE)
        self._lost: asyncio.Future[str | None] | None = None

    def subscribe(self, callback: EventCallback) -> None:
        self.callbacks.append(callback)

    def emit(self, event: Any) -> None:
        for callback in list(self.callbacks):
            callback(event)

    async def start(self) -> None:
        self.started = True
        for event in self._initial:
            self.emit(event)

    async def aclose(self) -> None:
        self.closed = True
        self._lost_future().cancel()

    def command_names(self) -> list[str]:
        return list(self._names)

    def _lost_future(self) -> asyncio.Future[str | None]:
        if self._lost is None:
            self._lost = asyncio.get_running_loop().create_future()
        return self._lost

    async def network_lost(self) -> str | None:
        try:
            return await self._lost_future()
        except asyncio.CancelledError:
            if self.closed:
                return None
            raise

    def lose_network(self, cause: str) -> None:
        """Stand for a network side that stopped by itself: ``network_lost()`` returns
        ``cause`` (call it on the App's loop)."""
        future = self._lost_future()
        if not future.done():
            future.set_result(cause)

    def offline_commands(self) -> frozenset[str]:
        return frozenset({"help"})

    async def run_command(self, line: str) -> None:
        self.commands.append(line)
        try:
            words = shlex.split(line)
        except ValueError as exc:
            self._output(line, f"cannot parse: {exc}", ok=False)
            return
        name, args = words[0], words[1:]
        if name not in self._names:
            self._output(name, f"unknown command {name!r}; try `help`", ok=False)
        elif len(args) < _MIN_ARGS.get(name, 0):
            self._output(name, f"usage: {SCRIPTED_USAGE.get(name, name)}", ok=False)
        elif name == "help":
            self._output(
                name,
                "\n".join(SCRIPTED_USAGE[n] for n in self._names if n in SCRIPTED_USAGE),
                ok=True,
            )
        else:
            self._output(name, "ok (scripted)", ok=True)

    def _output(self, command: str, text: str, *, ok: bool) -> None:
        self.emit({"event": "command_output", "command": command, "text": text, "ok": ok})
