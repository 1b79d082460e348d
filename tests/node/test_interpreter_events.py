"""The command interpreter and the event dataclasses (no network)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from node import events as ev
from node.commands import CommandError, Interpreter, parse_int
from node.commands.network import register_network_commands

NETWORK = {
    "help",
    "local",
    "connect",
    "ping",
    "peers",
    "fsub",
    "join",
    "leave",
    "publish",
    "topics",
    "fpeers",
    "bootmesh",
    "mesh",
}


@pytest.fixture
def interp() -> Interpreter:
    i = Interpreter()
    register_network_commands(i)
    return i


async def test_help_lists_exactly_the_registered_commands(interp: Interpreter) -> None:
    rt = SimpleNamespace(interpreter=interp)
    out = await interp.execute(rt, "help")
    assert out.ok
    listed = {line.split()[0] for line in out.text.splitlines()}
    assert listed == NETWORK

    async def echo(runtime: object, args: list[str]) -> str:
        return " ".join(args)

    interp.register("echo", "echo <words>", "say it back", echo)
    assert "echo" in (await interp.execute(rt, "help")).text
    assert (await interp.execute(rt, "echo 'a b' c")).text == "a b c"
    assert "usage: ping" in (await interp.execute(rt, "help ping")).text


async def test_bad_input_gives_errors_not_exceptions(interp: Interpreter) -> None:
    rt = SimpleNamespace(interpreter=interp)
    out = await interp.execute(rt, "pnig x 1")
    assert not out.ok and "did you mean 'ping'" in out.text
    out = await interp.execute(rt, "publish onlytopic")
    assert not out.ok and "usage: publish <topic> <msg>" in out.text
    out = await interp.execute(rt, "ping /ip4/1.2.3.4 many")
    assert not out.ok and "count must be a whole number" in out.text
    out = await interp.execute(rt, "join 'unterminated")
    assert not out.ok and "cannot parse" in out.text
    out = await interp.execute(rt, "topics extra")
    assert not out.ok and "takes no arguments" in out.text
    assert (await interp.execute(rt, "   ")).ok

    async def broken(runtime: object, args: list[str]) -> str:
        raise ZeroDivisionError("boom")

    interp.register("broken", "broken", "always fails", broken)
    out = await interp.execute(rt, "broken")
    assert not out.ok and "boom" in out.text


def test_parse_int_bounds() -> None:
    assert parse_int("5", "n", "x <n>") == 5
    with pytest.raises(CommandError, match="between 1 and 100"):
        parse_int("0", "n", "x <n>", lo=1, hi=100)


def test_events_serialise_with_their_type_and_round_trip() -> None:
    samples = [
        ev.Ready(peer_id="P", addrs=["/ip4/127.0.0.1/tcp/1/p2p/P"], role="provider", name="n"),
        ev.PeerJoined(peer_id="P", addr="127.0.0.1:1"),
        ev.PeerLeft(peer_id="P"),
        ev.PeerInfo(peer_id="P", model="m", backend="sim", rtt_ms=1.5, state="connected"),
        ev.PeerInfo(peer_id="P", model="m", backend="sim", slots=4, slots_used=1),
        ev.Mesh(topics={"swarm/mesh": ["A", "B"]}),
        ev.Bootmesh(topics={"t": ["A"]}),
        ev.Message(topic="t", sender="A", kind="text", text="hi"),
        ev.CommandOutput(command="peers", text="x", ok=True),
        ev.Error(message="bad", source="startup"),
        ev.Rejected(reason="bad_signature", sender="A", topic="swarm/mesh", detail="d", count=3),
        ev.Log(level="INFO", logger="x", message="m"),
        ev.SlmChunk(text="t", done=False),
        ev.Session(task="t1", leader="L", role="leader", stage="execute"),
        ev.Result(task="t1", leader="L", winner="A", score=0.5, text="answer"),
        ev.Reputation(peers={"A": 0.42}),
        ev.GatewayQueue(running=2, waiting=5, capacity=2),
    ]
    assert {e.event for e in samples} == set(ev.EVENT_TYPES)
    for e in samples:
        d = json.loads(e.to_json())
        assert d["event"] == e.event
        assert ev.event_from_dict(d) == e
    with pytest.raises(AttributeError):
        samples[0].peer_id = "other"  # frozen snapshots
