"""Shared pieces of the end-to-end tests: a swarm of real node processes, and ``rnet pipe`` runs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.node.swarm import ROOT, Swarm


@dataclass
class PipeRun:
    returncode: int
    lines: list[dict[str, Any]]
    stderr: str
    wall_s: float

    @property
    def result(self) -> dict[str, Any]:
        found = [e for e in self.lines if e.get("event") == "result"]
        assert found, f"no result line (rc {self.returncode}): {self.lines}\n{self.stderr[-2000:]}"
        return found[-1]


def run_pipe(
    swarm: Swarm, data_dir: Path, n: int, prompt: str, *extra: str, timeout: float = 40.0
) -> PipeRun:
    """``rnet pipe N prompt --json`` as a subprocess against ``swarm``; bounded by ``timeout``."""
    argv = [sys.executable, "-m", "node", "pipe", str(n), prompt, "--json"]
    argv += ["--timeout", str(timeout), "--data-dir", str(data_dir), *extra]
    started = time.monotonic()
    proc = subprocess.run(
        argv,
        cwd=swarm.workdir,
        env=swarm.env(),
        capture_output=True,
        text=True,
        timeout=timeout + 15,  # the pipe's own bound plus start-up; a hang fails here
    )
    lines = []
    for line in proc.stdout.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            lines.append({"event": "_raw", "text": line})
    return PipeRun(proc.returncode, lines, proc.stderr, time.monotonic() - started)


def rnet(*args: str, cwd: Path, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "node", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def swarm4(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    """Bootstrap + 4 sim providers at zero model latency, shared by a module's tests.

    Plus one provider started with ``--no-auto-join`` ("shy"): it sees every advertisement and
    must never take part. ``swarm.providers`` lists the four joiners only.
    """
    with Swarm(tmp_path_factory.mktemp("swarm4")) as swarm:
        swarm.start_bootstrap(timeout=60)
        shy = swarm.start_provider("shy", ["--no-auto-join"], wait=False)
        providers = swarm.start_providers(4, timeout=60)
        shy.wait_ready(60)
        shy.role = "observer"  # not in swarm.providers
        swarm.shy = shy  # type: ignore[attr-defined]
        # Everyone sees everyone (through the bootstrap's map): sessions can start.
        swarm.wait_until(
            lambda: all(len(p.peer_ids()) >= 5 for p in providers), 60, "providers see each other"
        )
        yield swarm


def sessions_of(node: Any, task: str) -> list[dict[str, Any]]:
    return node.find_all(lambda e: e.get("event") == "session" and e.get("task") == task)


def result_of(node: Any, task: str) -> dict[str, Any] | None:
    return node.find(lambda e: e.get("event") == "result" and e.get("task") == task)


def assert_full_matrix(result: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Every executor scored by every verifier; roles disjoint; the winner an executor."""
    scores = result["scores"]
    executors = list(scores)
    verifiers = list(next(iter(scores.values())))
    assert executors and verifiers
    assert not set(executors) & set(verifiers), "a peer both executed and verified"
    for row in scores.values():
        assert set(row) == set(verifiers)
        assert all(isinstance(s, float | int) and 0.0 <= s <= 0.99 for s in row.values()), row
    assert result["winner"] in executors
    assert result["leader"] not in executors + verifiers
    return executors, verifiers
