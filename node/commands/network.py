"""The network commands: help, local, connect, ping, peers, fsub, join, leave, publish, topics,
fpeers, bootmesh, mesh. Handlers run on asyncio and cross to trio through ``runtime.call``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from node.commands.interpreter import CommandError, Handler, Interpreter, parse_int, usage_error
from node.errors import HostError, RuntimeError_
from protocol.messages import MESH_TOPIC

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from node.runtime.node import NodeRuntime


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


async def _local(runtime: NodeRuntime, args: list[str]) -> str:
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
    if runtime.status:
        lines.append(f"status:   {runtime.status} (takes no executor/verifier role)")
    return "\n".join(lines)


async def _connect(runtime: NodeRuntime, args: list[str]) -> str:
    usage = "connect <maddr>"
    if len(args) != 1:
        raise usage_error(usage)
    try:
        peer = await runtime.call(runtime.host.connect, args[0])
    except HostError as exc:
        raise CommandError(str(exc)) from None
    return f"connected to {peer}"


async def _ping(runtime: NodeRuntime, args: list[str]) -> str:
    usage = "ping <maddr|peer-id> <count>"
    if len(args) != 2:
        raise usage_error(usage)
    count = parse_int(args[1], "count", usage, lo=1, hi=100)
    target = args[0]
    try:
        if target.startswith("/"):
            peer = await runtime.call(runtime.host.connect, target)
        else:
            peer = target  # is_connected raises HostError for a malformed peer id
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


async def _peers(runtime: NodeRuntime, args: list[str]) -> str:
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
            + (f"  ({p.status})" if p.status else "")
        )
    return "\n".join(lines)


async def _fsub(runtime: NodeRuntime, args: list[str]) -> str:
    usage = "fsub <maddr>"
    if len(args) != 1:
        raise usage_error(usage)

    async def open_floodsub(maddr: str) -> str:
        peer = await runtime.host.connect(maddr)
        try:
            await runtime.host.wait_for_pubsub_peer(peer, timeout=5.0)
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


async def _on_topic(
    runtime: NodeRuntime, args: list[str], usage: str, change: Callable[[str], Awaitable[bool]]
) -> bool:
    """Run ``change`` (join or leave) on the one topic in ``args``; whether anything changed."""
    if len(args) != 1:
        raise usage_error(usage)
    try:
        return await runtime.call(change, args[0])
    except RuntimeError_ as exc:
        raise CommandError(str(exc)) from None


async def _join(runtime: NodeRuntime, args: list[str]) -> str:
    new = await _on_topic(runtime, args, "join <topic>", runtime.join_topic)
    return f"joined {args[0]}" if new else f"already joined {args[0]}"


async def _leave(runtime: NodeRuntime, args: list[str]) -> str:
    left = await _on_topic(runtime, args, "leave <topic>", runtime.leave_topic)
    return f"left {args[0]}" if left else f"not joined to {args[0]}"


async def _publish(runtime: NodeRuntime, args: list[str]) -> str:
    usage = "publish <topic> <msg>"
    if len(args) < 2:
        raise usage_error(usage)
    topic, text = args[0], " ".join(args[1:])
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


async def _topics(runtime: NodeRuntime, args: list[str]) -> str:
    _no_args(args, "topics")
    return "\n".join(runtime.topics()) or "no topics"


async def _fpeers(runtime: NodeRuntime, args: list[str]) -> str:
    _no_args(args, "fpeers")
    host = runtime.host
    lines = [f"{pid}  {', '.join(host.topics_of(pid)) or '-'}" for pid in host.pubsub_peers()]
    return "\n".join(lines) or "no floodsub peers"


async def _bootmesh(runtime: NodeRuntime, args: list[str]) -> str:
    _no_args(args, "bootmesh")
    return _format_map(runtime.bootmesh(), "no bootmesh yet (not connected to the bootstrap?)")


async def _mesh(runtime: NodeRuntime, args: list[str]) -> str:
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
