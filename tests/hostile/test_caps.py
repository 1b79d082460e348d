"""Connection caps at the hub against real processes: per IP address (loopback included with
``--cap-loopback``) and new peers per minute."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import run_pipe
from tests.node.swarm import Swarm

pytestmark = pytest.mark.slow


def test_connections_per_ip_are_capped(tmp_path: Path) -> None:
    with Swarm(tmp_path) as swarm:
        boot = swarm.start_bootstrap(["--cap-loopback", "--max-conns-per-ip", "4"], timeout=60)
        providers = swarm.start_providers(3, timeout=60)
        swarm.wait_until(lambda: all(len(p.peer_ids()) >= 3 for p in providers), 30, "mesh")
        run = run_pipe(swarm, tmp_path / "lead", 3, "What is 2+2?", timeout=30)
        assert run.returncode == 0, f"{run.lines}\n{run.stderr[-2000:]}"
        fourth = swarm.start_provider("fourth")  # the pipe left: its place is free again
        fifth = swarm.start_provider("fifth", wait=False)
        boot.wait_for(
            lambda e: (
                e.get("event") == "rejected"
                and (
                    e.get("reason") == "conn_refused" or "conn_refused" in (e.get("reasons") or {})
                )
            ),
            30,
            what="the fifth connection from 127.0.0.1 refused",
        )
        assert fourth.ready is not None and fifth.ready is None


def test_new_peers_per_minute_are_capped(tmp_path: Path) -> None:
    with Swarm(tmp_path) as swarm:
        boot = swarm.start_bootstrap(["--max-new-peers", "3"], timeout=60)
        swarm.start_providers(3, timeout=60)
        late = swarm.start_provider("late", wait=False)
        boot.wait_for(
            lambda e: e.get("event") == "rejected" and "new peers" in (e.get("detail") or ""),
            30,
            what="a fourth new peer within the minute refused",
        )
        assert late.ready is None
