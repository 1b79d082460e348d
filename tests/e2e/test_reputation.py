"""Reputation on a real swarm (issue 16): every node counts the sessions it verified from its
own store, ``rnet peers`` shows it, and a restarted leader carries on from its store instead of
counting again. Bootstrap + 4 sim providers, separate processes; ``rnet pipe`` leads twice from
one data dir (two processes, one store).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import rnet, run_pipe
from tests.node.swarm import Swarm


def peers_of(data_dir: Path, cwd: Path) -> dict[str, dict]:
    proc = rnet("peers", "--json", "--data-dir", str(data_dir), cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return {row["peer"]: row for row in map(json.loads, proc.stdout.splitlines())}


def test_sessions_count_once_per_node_and_survive_a_restart(
    swarm4: Swarm, tmp_path_factory: pytest.TempPathFactory
) -> None:
    leader_dir = tmp_path_factory.mktemp("rep") / "leader"
    first = run_pipe(swarm4, leader_dir, 4, "What is 2+2?")
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.result["aggregator"] == "robust"  # the default
    providers = {p.peer_id for p in swarm4.providers}
    after_one = peers_of(leader_dir, swarm4.workdir)
    assert set(after_one) == providers
    assert all(row["sessions"] == 1 for row in after_one.values())
    assert all(0 < row["reputation"] < 1 for row in after_one.values())

    second = run_pipe(swarm4, leader_dir, 4, "And 3+3?")  # a new process on the same store
    assert second.returncode == 0, second.stderr[-3000:]
    after_two = peers_of(leader_dir, swarm4.workdir)
    assert all(after_two[p]["sessions"] == 2 for p in providers)  # counted once each
    judges = set(next(iter(second.result["scores"].values())))
    assert all(after_two[j]["evidence"] > after_one[j]["evidence"] for j in judges)

    # each provider counts the session from its own store too (it stores the reveal and result
    # as they arrive, then counts): polling files other processes write, no event to wait on
    some = swarm4.providers[0]
    deadline = time.monotonic() + 30
    seen: dict[str, dict] = {}
    while time.monotonic() < deadline:
        seen = peers_of(swarm4.data_root / some.name, swarm4.workdir)
        if len(seen) >= 3:
            break
        time.sleep(0.2)
    assert len(seen) >= 3, seen  # the other participants of its sessions
