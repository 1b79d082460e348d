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
from typing import Any

logger = logging.getLogger(__name__)

Handler = Callable[[Any, list[str]], Awaitable[str]]


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

    async def execute(self, runtime: Any, line: str) -> Outcome:
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


async def _help(runtime: Any, args: list[str]) -> str:
    interpreter: Interpreter = runtime.interpreter
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


# -- the network commands (help, local, connect, ping, peers, fsub, join, leave, publish, topics,
# fpeers, bootmesh, mesh). Handlers run on asyncio and cross to trio through ``runtime.call``.


def register_network_commands(interpreter: Interpreter) -> None:
    for name, usage, help_text, handler in _NETWORK_COMMANDS:
        interpreter.register(name, usage, help_text, handler)


def _no_args(args: list[str], usage: str) -> None:
    if args:
        raise usage_error(usage, "takes no arguments")


def _short(peer: str) -> str:
    return peer[-6:]


def _format_map(topics: dict[str, list[str]], empty: str) -> str:
    if not topics:
        return empty
    return "\n".join(
        f"{topic}: {', '.join(_short(p) for p in peers) or '-'}"
        for topic, peers in sorted(topics.items())
    )


async def _local(runtime: Any, args: list[str]) -> str:
    _no_args(args, "local")
    cfg = runtime.config
    lines = [
        f"peer id:  {runtime.peer_id_str}",
        f"role:     {runtime.role}   name: {cfg.name}   ready: {'yes' if runtime.ready else 'no'}",
        f"data dir: {cfg.data_dir}",
    ]
    lines += [f"addr:     {a}" for a in runtime.host.addrs()]
    if runtime.model or runtime.backend:
        lines.append(f"model:    {runtime.model or '-'} ({runtime.backend or '-'})")
    return "\n".join(lines)


async def _connect(runtime: Any, args: list[str]) -> str:
    usage = "connect <maddr>"
    if len(args) != 1:
        raise usage_error(usage)
    from node.host import HostError

    try:
        peer = await runtime.call(runtime.host.connect, args[0])
    except HostError as exc:
        raise CommandError(str(exc)) from None
    return f"connected to {peer}"


async def _ping(runtime: Any, args: list[str]) -> str:
    usage = "ping <maddr|peer-id> <count>"
    if len(args) != 2:
        raise usage_error(usage)
    count = parse_int(args[1], "count", usage, lo=1, hi=100)
    from node.host import HostError, parse_peer_id

    target = args[0]
    try:
        if target.startswith("/"):
            peer = await runtime.call(runtime.host.connect, target)
        else:
            peer = parse_peer_id(target).to_base58()
            if not runtime.host.is_connected(peer):
                raise CommandError(f"not connected to {target}; give its multiaddr")
        rtts = []
        for _ in range(count):
            rtts.append(await runtime.call(runtime.host.ping_once, peer))
    except HostError as exc:
        raise CommandError(str(exc)) from None
    lines = [f"{i + 1}: {rtt:.2f} ms" for i, rtt in enumerate(rtts)]
    lines.append(
        f"{count} pings to {_short(peer)}: min {min(rtts):.2f} / avg {sum(rtts) / len(rtts):.2f} "
        f"/ max {max(rtts):.2f} ms"
    )
    return "\n".join(lines)


async def _peers(runtime: Any, args: list[str]) -> str:
    _no_args(args, "peers")
    peers = runtime.peers()
    if not peers:
        return "no peers"
    lines = []
    for p in peers:
        rtt = f"{p.rtt_ms:.1f} ms" if p.rtt_ms is not None else "-"
        model = f"{p.model} ({p.backend})" if p.model else "-"
        link = "direct" if p.connected else "via bootstrap"
        lines.append(
            f"{p.peer_id}  {p.name or '?':<12} {p.role or '?':<9} {model:<24} {rtt:>9}  {link}"
        )
    return "\n".join(lines)


async def _fsub(runtime: Any, args: list[str]) -> str:
    usage = "fsub <maddr>"
    if len(args) != 1:
        raise usage_error(usage)
    from node.host import HostError

    async def open_floodsub(maddr: str) -> str:
        import trio

        from node.host import parse_peer_id

        peer = await runtime.host.connect(maddr)
        try:
            await runtime.host.pubsub.wait_for_peer(parse_peer_id(peer), timeout=5.0)
        except trio.TooSlowError:
            raise HostError(
                f"connected to {_short(peer)} but it opened no floodsub stream"
            ) from None
        return peer

    try:
        peer = await runtime.call(open_floodsub, args[0])
    except HostError as exc:
        raise CommandError(str(exc)) from None
    return f"floodsub stream open with {peer}"


async def _join(runtime: Any, args: list[str]) -> str:
    usage = "join <topic>"
    if len(args) != 1:
        raise usage_error(usage)
    from node.runtime import RuntimeError_

    try:
        new = await runtime.call(runtime.join_topic, args[0])
    except RuntimeError_ as exc:
        raise CommandError(str(exc)) from None
    return f"joined {args[0]}" if new else f"already joined {args[0]}"


async def _leave(runtime: Any, args: list[str]) -> str:
    usage = "leave <topic>"
    if len(args) != 1:
        raise usage_error(usage)
    from node.runtime import RuntimeError_

    try:
        left = await runtime.call(runtime.leave_topic, args[0])
    except RuntimeError_ as exc:
        raise CommandError(str(exc)) from None
    return f"left {args[0]}" if left else f"not joined to {args[0]}"


async def _publish(runtime: Any, args: list[str]) -> str:
    usage = "publish <topic> <msg>"
    if len(args) < 2:
        raise usage_error(usage)
    topic, text = args[0], " ".join(args[1:])
    from node.config import MESH_TOPIC
    from node.runtime import RuntimeError_

    if topic == MESH_TOPIC:
        # every node would reject it: the mesh topic carries signed protocol messages only
        raise CommandError(f"{MESH_TOPIC} carries signed protocol messages only; join a topic")

    data = text.encode("utf-8")
    if len(data) > 64 * 1024:
        raise CommandError("message too long (64 KiB at most)")
    try:
        await runtime.call(runtime.publish_raw, topic, data)
    except RuntimeError_ as exc:
        raise CommandError(str(exc)) from None
    return f"published {len(data)} bytes to {topic}"


async def _topics(runtime: Any, args: list[str]) -> str:
    _no_args(args, "topics")
    return "\n".join(runtime.topics()) or "no topics"


async def _fpeers(runtime: Any, args: list[str]) -> str:
    _no_args(args, "fpeers")
    pubsub = runtime.host.pubsub
    lines = []
    for pid in sorted(p.to_base58() for p in pubsub.peers):
        topics = sorted(
            t for t, ps in pubsub.peer_topics.items() if any(p.to_base58() == pid for p in ps)
        )
        lines.append(f"{pid}  {', '.join(topics) or '-'}")
    return "\n".join(lines) or "no floodsub peers"


async def _bootmesh(runtime: Any, args: list[str]) -> str:
    _no_args(args, "bootmesh")
    return _format_map(runtime.bootmesh(), "no bootmesh yet (not connected to the bootstrap?)")


async def _mesh(runtime: Any, args: list[str]) -> str:
    _no_args(args, "mesh")
    return _format_map(runtime.mesh(), "no topics")


_NETWORK_COMMANDS: list[tuple[str, str, str, Handler]] = [
    ("local", "local", "this node's peer id, addresses, role and data dir", _local),
    (
        "connect",
        "connect <maddr>",
        "connect to a peer by multiaddr (/ip4/../tcp/../p2p/..)",
        _connect,
    ),
    (
        "ping",
        "ping <maddr|peer-id> <count>",
        "ping a peer count times (1-100), print the RTTs",
        _ping,
    ),
    (
        "peers",
        "peers",
        "peers known online: name, role, model, RTT, direct or via bootstrap",
        _peers,
    ),
    ("fsub", "fsub <maddr>", "connect and open a floodsub stream with a peer", _fsub),
    ("join", "join <topic>", "subscribe to a topic (its messages are shown)", _join),
    ("leave", "leave <topic>", "unsubscribe from a topic", _leave),
    ("publish", "publish <topic> <msg>", "publish a text message to a topic", _publish),
    ("topics", "topics", "the topics this node is subscribed to", _topics),
    ("fpeers", "fpeers", "peers with an open floodsub stream, and their topics", _fpeers),
    ("bootmesh", "bootmesh", "the bootstrap's map of topic -> peers", _bootmesh),
    ("mesh", "mesh", "this node's own map of topic -> peers", _mesh),
]
