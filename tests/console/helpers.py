"""Scripted events (``to_dict()`` forms of ``node.events``) and condition waits for Pilot tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable

LEADER = "12D3KooWLeaderPeerxxxxxxxxxxxxxxxxxLEADER"
PEERS = [f"12D3KooWProviderPeerxxxxxxxxxxxxxxxxxxPRV{i:03d}" for i in range(1, 6)]
EXECUTORS = PEERS[:2]
VERIFIERS = PEERS[2:4]


async def wait_for(
    pilot: Pilot, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Let the app run until ``predicate()`` holds; fail after ``timeout`` (an upper bound)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.02)


def row_text(table: DataTable, key: str) -> list[str]:
    return [str(cell) for cell in table.get_row(key)]


def ready(peer_id: str = LEADER, role: str = "provider", name: str = "leader") -> dict[str, Any]:
    return {
        "event": "ready",
        "peer_id": peer_id,
        "addrs": ["/ip4/127.0.0.1/tcp/4001"],
        "role": role,
        "name": name,
    }


def session(task: str = "task-1", stage: str = "verify", **over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "event": "session",
        "task": task,
        "leader": LEADER,
        "role": "leader",
        "stage": stage,
        "stage_deadline_ms": int(time.time() * 1000) + 30_000,
        "prompt": "What is the capital of France?",
        "joined": PEERS[:4],
        "executors": EXECUTORS,
        "verifiers": VERIFIERS,
        "responses": {EXECUTORS[0]: "Paris.", EXECUTORS[1]: None},
        "scores": {
            EXECUTORS[0]: {VERIFIERS[0]: 0.91, VERIFIERS[1]: None},
            EXECUTORS[1]: {VERIFIERS[0]: None, VERIFIERS[1]: None},
        },
        "missing": {"executors": [], "verifiers": [], "scores": {EXECUTORS[0]: [VERIFIERS[1]]}},
        "averages": {},
        "winner": None,
    }
    data.update(over)
    data.setdefault("counts", engine_counts(data))
    return data


def engine_counts(data: dict[str, Any]) -> dict[str, int]:
    """The progress counts the engine sends with a snapshot (node.sessions.views)."""
    responded = [e for e, text in data["responses"].items() if text is not None]
    return {
        "joined": len(data["joined"]),
        "executors": len(data["executors"]),
        "verifiers": len(data["verifiers"]),
        "responses": len(responded),
        "responses_expected": len(data["executors"]),
        "scores": sum(1 for row in data["scores"].values() for s in row.values() if s is not None),
        "scores_expected": sum(len(set(data["verifiers"]) - {e}) for e in responded),
    }


def result(task: str = "task-1", **over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "event": "result",
        "task": task,
        "leader": LEADER,
        "winner": EXECUTORS[0],
        "score": 0.9,
        "text": "Paris is the capital of France.",
        "averages": {EXECUTORS[0]: 0.9, EXECUTORS[1]: 0.2},
        "scores": {
            EXECUTORS[0]: {VERIFIERS[0]: 0.91, VERIFIERS[1]: 0.89},
            EXECUTORS[1]: {VERIFIERS[0]: 0.2, VERIFIERS[1]: None},
        },
        "missing": {"executors": [], "verifiers": [], "scores": {EXECUTORS[1]: [VERIFIERS[1]]}},
        "aggregator": "mean",
        "timings": {},
    }
    data.update(over)
    return data
