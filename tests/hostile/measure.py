"""Measure what the hostile peer does to a real swarm (numbers for tests/hostile/README.md).

``python -m tests.hostile.measure [--only NAME ...]`` runs each attack against a fresh swarm of
``rnet`` processes on loopback (sim backend) and prints one JSON line per attack:

- ``subscribe_long`` / ``subscribe_many``: one 200-character topic, or 300 topics; then whether
  the hub is still alive, a new provider can join, and an honest ``pipe 3`` completes;
- ``adverts``: four advertisements with 1-hour deadlines; how long an honest ``pipe 3`` waits
  (and whether it completes), during the flood and after the attacker left;
- ``garbage``: 10,000 malformed messages; the hub's CPU for them, how many reached each leaf,
  and how long the leaves took to work through them;
- ``sybil``: 1,000 injected identities; the attacker's share of join slots, executor and
  verifier roles over three ``pipe 8`` sessions with four honest providers, and who won.

Nothing here asserts: it prints what happened (the regression tests assert).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.hostile.harness import (
    attack,
    cpu_seconds,
    honest_pipe,
    new_provider_joins,
    rejected_total,
    start_attacker,
)
from tests.node.swarm import Swarm


def _swarm(root: Path, name: str, providers: int) -> tuple[Swarm, list[Any]]:
    swarm = Swarm(root / name)
    swarm.start_bootstrap(timeout=60)
    nodes = swarm.start_providers(providers, timeout=60)
    swarm.wait_until(
        lambda: all(len(p.peer_ids()) >= providers for p in nodes), 60, "providers see each other"
    )
    return swarm, nodes


def _pipe(swarm: Swarm, n: int = 3, timeout: float = 30.0) -> dict[str, Any]:
    run = honest_pipe(swarm, n, timeout)
    error = next((e.get("message") for e in run.lines if e.get("event") == "error"), None)
    return {"rc": run.returncode, "wall_s": round(run.wall_s, 2), "error": error}


def _hub_state(swarm: Swarm) -> dict[str, Any]:
    boot = swarm.bootstrap
    assert boot is not None
    return {"hub_alive": boot.alive, "hub_rc": boot.proc.returncode}


def subscribe_attack(root: Path, name: str, cmd: dict[str, Any]) -> dict[str, Any]:
    swarm, _ = _swarm(root, name, 3)
    with swarm:
        attacker = start_attacker(swarm)
        attack(attacker, **cmd)
        # give the hub's topology loop its chance to choke on it (debounce + bootmesh interval)
        boot = swarm.bootstrap
        assert boot is not None
        mark = boot.mark()
        try:
            boot.wait_for(lambda e: e.get("event") in ("bootmesh", "mesh"), 10, mark)
        except AssertionError:
            pass
        out = {"attack": name, **_hub_state(swarm)}
        out["new_provider_joins"] = new_provider_joins(swarm, 20)
        out["pipe"] = _pipe(swarm)
        out.update(_hub_state(swarm))
        return out


def adverts_attack(root: Path, keys: int) -> dict[str, Any]:
    swarm, providers = _swarm(root, f"adverts-{keys}", 3)
    with swarm:
        attacker = start_attacker(swarm)
        tasks = set(attack(attacker, do="adverts", n=4, join_ms=3_600_000, keys=keys)["tasks"])
        out: dict[str, Any] = {"attack": "adverts", "keys": keys}
        out["slots_taken"] = _flood_joins(swarm, providers, tasks)
        out["pipe_during"] = _pipe(swarm, 3, 30)
        attack(attacker, do="garbage", n=0)  # a round trip: the attacker is still there
        attacker.send(json.dumps({"do": "quit"}))
        attacker.wait_exit(20)
        out["pipe_after_attacker_left"] = _pipe(swarm, 3, 30)
        out["new_provider_joins"] = new_provider_joins(swarm, 20)
        out.update(_hub_state(swarm))
        return out


def _flood_joins(swarm: Swarm, providers: list[Any], tasks: set[str]) -> list[int]:
    """How many of the flood's sessions each provider took a slot in (once that settled)."""

    def taken(p: Any) -> int:
        return len({e["task"] for e in p.find_all(lambda e: e.get("event") == "session")} & tasks)

    try:
        swarm.wait_until(lambda: all(taken(p) >= len(tasks) for p in providers), 10, "joins")
    except AssertionError:
        pass  # some declined (or never saw them): that is what we measure
    return [taken(p) for p in providers]


def garbage_attack(root: Path, n: int) -> dict[str, Any]:
    swarm, leaves = _swarm(root, "garbage", 3)
    with swarm:
        attacker = start_attacker(swarm)
        boot = swarm.bootstrap
        assert boot is not None
        cpu0 = cpu_seconds(boot)
        leaf_cpu0 = [cpu_seconds(p) for p in leaves]
        started = time.monotonic()
        sent = attack(attacker, do="garbage", n=n, timeout=600)["sent"]
        sent_s = time.monotonic() - started

        # the leaves work through what reached them: wait until their counts stop moving
        def settled() -> list[int]:
            last, still = [-1] * len(leaves), 0
            while still < 3:
                now = [rejected_total(p) for p in leaves]
                still = still + 1 if now == last else 0
                last = now
                time.sleep(1.0)  # measuring, not testing: sample once a second
            return last

        reached = settled()
        worked_s = time.monotonic() - started
        out = {
            "attack": "garbage",
            "sent": sent,
            "send_s": round(sent_s, 2),
            "hub_cpu_s": round(cpu_seconds(boot) - cpu0, 2),
            "leaf_cpu_s": [
                round(cpu_seconds(p) - c, 2) for p, c in zip(leaves, leaf_cpu0, strict=True)
            ],
            "reached_leaves": reached,
            "until_settled_s": round(worked_s, 1),
            "rejected_lines_per_leaf": [
                len(p.find_all(lambda e: e.get("event") == "rejected")) for p in leaves
            ],
        }
        out["new_provider_joins"] = new_provider_joins(swarm, 20)
        out["pipe"] = _pipe(swarm)
        out.update(_hub_state(swarm))
        return out


def oversize_attack(root: Path) -> dict[str, Any]:
    swarm, _ = _swarm(root, "oversize", 3)
    with swarm:
        attacker = start_attacker(swarm)
        boot = swarm.bootstrap
        assert boot is not None
        before = rejected_total(boot)
        attack(attacker, do="oversize", n=2, bytes=1_200_000)
        try:  # counted (after) or not (before): wait a little for the count to show
            boot.wait_for(lambda e: e.get("event") == "rejected", 10, boot.mark())
        except AssertionError:
            pass
        out = {"attack": "oversize", "hub_counted": rejected_total(boot) - before}
        out["new_provider_joins"] = new_provider_joins(swarm, 20)
        out["pipe"] = _pipe(swarm)
        out.update(_hub_state(swarm))
        return out


def sybil_attack(root: Path, keys: int, sessions: int = 3, n: int = 8) -> dict[str, Any]:
    swarm, honest = _swarm(root, "sybil", 4)
    with swarm:
        attacker = start_attacker(swarm)
        attack(attacker, do="sybil", keys=keys)
        honest_ids = {p.peer_id for p in honest}
        totals = {"joined": [0, 0], "executors": [0, 0], "verifiers": [0, 0]}
        winners, runs = [], []
        for _ in range(sessions):
            run = honest_pipe(swarm, n, 40)
            runs.append({"rc": run.returncode, "wall_s": round(run.wall_s, 2)})
            result = next((e for e in run.lines if e.get("event") == "result"), None)
            if result is None:
                continue
            executors = set(result["scores"]) | set(result["missing"].get("executors", []))
            verifiers = set(result["missing"].get("verifiers", []))
            for row in result["scores"].values():
                verifiers |= set(row)
            for what, peers in (("executors", executors), ("verifiers", verifiers)):
                totals[what][0] += len(peers - honest_ids)
                totals[what][1] += len(peers)
            totals["joined"][0] += len((executors | verifiers) - honest_ids)
            totals["joined"][1] += len(executors | verifiers)
            winners.append("honest" if result["winner"] in honest_ids else "attacker")
        return {
            "attack": "sybil",
            "keys": keys,
            "pipe_n": n,
            "sessions": runs,
            "attacker_share": {k: f"{a}/{t}" for k, (a, t) in totals.items()},
            "winners": winners,
            "new_provider_joins": new_provider_joins(swarm, 20),
            **_hub_state(swarm),
        }


ATTACKS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "subscribe_long": lambda r: subscribe_attack(
        r, "subscribe_long", {"do": "subscribe", "topics": ["x" * 200]}
    ),
    "subscribe_many": lambda r: subscribe_attack(
        r, "subscribe_many", {"do": "subscribe", "count": 300}
    ),
    "adverts": lambda r: adverts_attack(r, 0),
    "adverts_keys": lambda r: adverts_attack(r, 4),
    "garbage": lambda r: garbage_attack(r, 10_000),
    "oversize": oversize_attack,
    "sybil": lambda r: sybil_attack(r, 1_000),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(ATTACKS), default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rnet-hostile-") as tmp:
        for name in args.only or list(ATTACKS):
            try:
                out = ATTACKS[name](Path(tmp))
            except Exception as exc:  # a measurement that broke says so and the others go on
                out = {"attack": name, "error": f"{type(exc).__name__}: {str(exc)[:500]}"}
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
