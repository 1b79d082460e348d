"""Driving the hostile peer (``tests.hostile.attacker``) next to a real swarm of ``rnet`` processes.

Used by the regression tests in this package and by ``python -m tests.hostile.measure`` (the
before/after numbers)::

    with Swarm(tmp_path) as swarm:
        swarm.start_bootstrap()
        attacker = start_attacker(swarm)
        attack(attacker, do="garbage", n=10_000)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from tests.e2e.conftest import PipeRun, run_pipe
from tests.node.swarm import NodeProc, Swarm

__all__ = [
    "PipeRun",
    "attack",
    "cpu_seconds",
    "honest_pipe",
    "new_provider_joins",
    "rejected_total",
    "start_attacker",
]


def start_attacker(swarm: Swarm, name: str = "attacker", timeout: float = 60.0) -> NodeProc:
    """The hostile peer as a process, connected to ``swarm``'s bootstrap and ready."""
    argv = [
        sys.executable,
        "-m",
        "tests.hostile.attacker",
        "--name",
        name,
        "--data-dir",
        str(swarm.workdir / "data" / name),
    ]
    node = NodeProc(swarm, name, "attacker", argv, swarm.env())
    swarm.nodes.append(node)
    node.wait_for(lambda e: e.get("attacker") == "ready", timeout, what="attacker ready")
    return node


def attack(node: NodeProc, timeout: float = 120.0, **cmd: Any) -> dict[str, Any]:
    """Send one command to the attacker and return its answer line."""
    since = node.mark()
    node.send(json.dumps(cmd))
    answer = node.wait_for(
        lambda e: e.get("attacker") in (cmd["do"], "error"), timeout, since, what=f"attack {cmd}"
    )
    assert answer["attacker"] != "error", answer
    return answer


def cpu_seconds(node: NodeProc) -> float:
    """User + system CPU the node's process has used so far."""
    with open(f"/proc/{node.proc.pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rejected_total(node: NodeProc) -> int:
    """How many messages ``node`` says it rejected (the largest count it reported)."""
    counts = [
        int(e.get("count") or e.get("total") or 0)
        for e in node.find_all(lambda e: e.get("event") in ("rejected", "rejected_summary"))
    ]
    return max(counts, default=0)


def honest_pipe(swarm: Swarm, n: int = 3, timeout: float = 30.0, tag: str = "pipe") -> PipeRun:
    """An honest ``rnet pipe n`` against the swarm (its own data dir each time)."""
    data = Path(swarm.workdir) / f"{tag}-{len(swarm.nodes)}-{os.getpid()}"
    return run_pipe(swarm, data, n, "What is 2+2?", timeout=timeout)


def new_provider_joins(swarm: Swarm, timeout: float = 20.0) -> bool:
    """Whether a freshly started provider gets ``ready`` (connected to the hub) in time."""
    node = swarm.start_provider(wait=False)
    try:
        node.wait_ready(timeout)
        return True
    except AssertionError:
        return False
