"""The command interpreter shared by the console input and headless stdin.

A registry: ``Interpreter.register(name, usage, help, handler)``; a handler is
``async def handler(runtime, args: list[str]) -> str`` run on the asyncio side, returning the
text to show, and raising :class:`CommandError` for bad input (the message should say the
usage). ``help`` lists only registered commands; an unknown name gets a suggestion.
"""

from __future__ import annotations

import difflib
import logging
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from node.runtime.node import NodeRuntime

logger = logging.getLogger(__name__)

Handler = Callable[["NodeRuntime", list[str]], Awaitable[str]]


class CommandError(Exception):
    """Bad command input; the message is shown to the user as is."""


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    usage: str
    help: str
    handler: Handler


@dataclass(frozen=True, slots=True)
class Outcome:
    command: str
    text: str
    ok: bool


class Interpreter:
    """Parses a command line with shlex and runs the registered handler."""

    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}
        self.register("help", "help [command]", "list commands, or show one command's usage", _help)

    def register(self, name: str, usage: str, help: str, handler: Handler) -> None:
        """Add (or replace) a command. ``usage`` starts with the name: ``"ping <maddr> <n>"``."""
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"bad command name {name!r}")
        self._commands[name] = Command(name, usage, help, handler)

    def unregister(self, name: str) -> None:
        self._commands.pop(name, None)

    @property
    def commands(self) -> dict[str, Command]:
        return dict(self._commands)

    def help_text(self, name: str | None = None) -> str:
        if name is not None:
            cmd = self._commands.get(name)
            if cmd is None:
                raise CommandError(self._unknown(name))
            return f"usage: {cmd.usage}\n  {cmd.help}"
        width = max(len(c.usage) for c in self._commands.values())
        return "\n".join(
            f"{c.usage.ljust(width)}  {c.help}"
            for c in sorted(self._commands.values(), key=lambda c: c.name)
        )

    def _unknown(self, name: str) -> str:
        close = difflib.get_close_matches(name, self._commands, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown command {name!r}{hint}; type 'help' for the list"

    async def execute(self, runtime: NodeRuntime, line: str) -> Outcome:
        """Run one command line; never raises for bad input (it becomes ``ok=False``)."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            return Outcome(line.strip(), f"cannot parse command: {exc}", False)
        if not words:
            return Outcome("", "", True)
        name, args = words[0], words[1:]
        cmd = self._commands.get(name)
        if cmd is None:
            return Outcome(name, self._unknown(name), False)
        try:
            text = await cmd.handler(runtime, args)
        except CommandError as exc:
            return Outcome(name, str(exc) or f"usage: {cmd.usage}", False)
        except Exception as exc:
            # A failing command is reported, never allowed to take the node down.
            logger.exception("command %r failed", name)
            return Outcome(name, f"{name} failed: {exc}", False)
        return Outcome(name, text, True)


async def _help(runtime: NodeRuntime, args: list[str]) -> str:
    interpreter = runtime.interpreter
    if len(args) > 1:
        raise CommandError("usage: help [command]")
    return interpreter.help_text(args[0] if args else None)


def usage_error(usage: str, problem: str = "") -> CommandError:
    """A CommandError that states the problem (if any) and the usage."""
    return CommandError(f"{problem}; usage: {usage}" if problem else f"usage: {usage}")


def parse_int(text: str, name: str, usage: str, *, lo: int = 1, hi: int = 1_000_000) -> int:
    try:
        value = int(text)
    except ValueError:
        raise usage_error(usage, f"{name} must be a whole number, got {text!r}") from None
    if not lo <= value <= hi:
        raise usage_error(usage, f"{name} must be between {lo} and {hi}")
    return value
