"""Each attack of issue 13 against a real swarm of ``rnet`` processes, through one real libp2p
connection (``tests.hostile.attacker``). Every test asserts that an honest ``pipe`` completes
during and after the attack, and that the hub still accepts a new provider.

One swarm (bootstrap + three sim providers) serves the module; each test brings its own
attacker (a fresh key), so a block earned in one test does not leak into the next.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protocol.admission import DEFAULT_MAX_PER_LEADER
from tests.hostile.harness import attack, honest_pipe, start_attacker
from tests.node.swarm import NodeProc, Swarm

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    with Swarm(tmp_path_factory.mktemp("hostile")) as swarm:
        swarm.start_bootstrap(timeout=60)
        providers = swarm.start_providers(3, timeout=60)
        swarm.wait_until(
            lambda: all(len(p.peer_ids()) >= 3 for p in providers), 60, "providers see each other"
        )
        yield swarm


def pipe_completes(swarm: Swarm, what: str) -> dict[str, Any]:
    run = honest_pipe(swarm, 3, 30)
    hub = swarm.bootstrap.tail(40) if swarm.bootstrap is not None else "(no hub)"
    assert run.returncode == 0, (
        f"honest pipe {what}: {run.lines}\n{run.stderr[-2000:]}\nthe hub's last events:\n{hub}"
    )
    return run.result


def new_provider_joins(swarm: Swarm) -> None:
    node = swarm.start_provider(wait=False)
    node.wait_ready(30)


def hub_rejected(swarm: Swarm, sender: str, reason: str, timeout: float = 20) -> dict[str, Any]:
    """The hub's rejected event (or summary line) naming ``reason`` for ``sender``."""
    boot = swarm.bootstrap
    assert boot is not None
    return boot.wait_for(
        lambda e: (
            e.get("event") == "rejected"
            and e.get("sender") == sender
            and (e.get("reason") == reason or reason in (e.get("reasons") or {}))
        ),
        timeout,
        what=f"hub rejects {reason} from {sender[-6:]}",
    )


def attack_during(node: NodeProc, swarm: Swarm, **cmd: Any) -> dict[str, Any]:
    """Start an attack, run an honest pipe while it goes on, then wait for the attack's end."""
    answer: dict[str, Any] = {}
    since = node.mark()
    node.send(json.dumps(cmd))
    thread = threading.Thread(target=lambda: answer.update(result=pipe_completes(swarm, "during")))
    thread.start()
    node.wait_for(lambda e: e.get("attacker") == cmd["do"], 120, since, what=f"attack {cmd}")
    thread.join(60)
    assert "result" in answer, "the honest pipe during the attack did not complete"
    return answer["result"]


def test_odd_subscriptions_are_refused_and_the_hub_stays_up(swarm: Swarm) -> None:
    attacker = start_attacker(swarm, "subscriber")
    attack(attacker, do="subscribe", topics=["x" * 200])
    attack(attacker, do="subscribe", count=300)
    hub_rejected(swarm, attacker_id(attacker), "bad_topic")
    hub_rejected(swarm, attacker_id(attacker), "too_many_topics")
    assert swarm.bootstrap is not None and swarm.bootstrap.alive
    pipe_completes(swarm, "after odd subscriptions")
    new_provider_joins(swarm)


def test_an_advert_flood_does_not_lock_providers_out(swarm: Swarm) -> None:
    attacker = start_attacker(swarm, "flooder")
    # one-hour deadlines: declined outright; ten-minute ones: a few per leader at most
    attack(attacker, do="adverts", n=4, join_ms=3_600_000)
    flood = attack(attacker, do="adverts", n=8, join_ms=150_000)["tasks"]
    pipe_completes(swarm, "during the advert flood")
    for provider in swarm.providers:
        joined = {e["task"] for e in provider.find_all(lambda e: e.get("event") == "session")}
        assert len(joined & set(flood)) <= DEFAULT_MAX_PER_LEADER, f"{provider.name}: {joined}"
    attacker.send(json.dumps({"do": "quit"}))
    attacker.wait_exit(20)
    pipe_completes(swarm, "after the advert flood")
    new_provider_joins(swarm)


def test_injected_identities_never_reach_the_leader(swarm: Swarm) -> None:
    attacker = start_attacker(swarm, "sybil")
    honest = {p.peer_id for p in swarm.providers}
    attack(attacker, do="sybil", keys=300)
    result = pipe_completes(swarm, "with 300 injected identities")
    roles = set(result["scores"]) | {v for row in result["scores"].values() for v in row}
    assert roles <= honest, "an injected identity got a role"
    hub_rejected(swarm, attacker_id(attacker), "foreign_origin")
    pipe_completes(swarm, "after the sybil attack")
    new_provider_joins(swarm)


def test_garbage_is_dropped_at_the_hub_and_the_sender_blocked(swarm: Swarm) -> None:
    attacker = start_attacker(swarm, "garbage")
    leaves = swarm.providers
    marks = [p.mark() for p in leaves]
    attack_during(attacker, swarm, do="garbage", n=3000)
    who = attacker_id(attacker)
    hub_rejected(swarm, who, "not_msgpack")
    boot = swarm.bootstrap
    assert boot is not None
    boot.wait_for(
        lambda e: e.get("event") == "log" and "blocking peer" in e.get("message", ""),
        20,
        what="the garbage sender blocked",
    )
    for leaf, mark in zip(leaves, marks, strict=True):
        assert not leaf.find(
            lambda e: e.get("event") == "rejected" and e.get("sender") == who, since=mark
        ), f"garbage reached {leaf.name}"
    # counted, but shown as a handful of lines, not one per message
    lines = boot.find_all(lambda e: e.get("event") == "rejected" and e.get("sender") == who)
    assert len(lines) < 20, len(lines)
    pipe_completes(swarm, "after the garbage")
    new_provider_joins(swarm)


def test_oversize_frames_are_counted(swarm: Swarm) -> None:
    attacker = start_attacker(swarm, "oversize")
    attack(attacker, do="oversize", n=2, bytes=1_200_000)
    hub_rejected(swarm, attacker_id(attacker), "oversize")
    pipe_completes(swarm, "after oversize frames")
    new_provider_joins(swarm)


def attacker_id(node: NodeProc) -> str:
    ready = node.find(lambda e: e.get("attacker") == "ready")
    assert ready is not None
    return ready["peer_id"]


def _key_file(swarm: Swarm, name: str, seed: bytes) -> None:
    data = Path(swarm.data_root) / name
    data.mkdir(parents=True, exist_ok=True)
    (data / "node.key").write_text(seed.hex() + "\n", encoding="ascii")
