"""A closed swarm (``--members required``) against real processes: members take part, a peer
without a certificate is refused at the hub and never gets a role."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from protocol.identity import NaclSigner, peer_id_to_str
from tests.e2e.conftest import run_pipe
from tests.node.swarm import Swarm

pytestmark = pytest.mark.slow

CLOSED = ["--members", "required"]


def make_key(swarm: Swarm, name: str, n: int) -> str:
    """Give node ``name`` a known key before it starts; returns its peer ID."""
    seed = bytes([n]) * 32
    data = swarm.data_root / name
    data.mkdir(parents=True, exist_ok=True)
    (data / "node.key").write_text(seed.hex() + "\n", encoding="ascii")
    return peer_id_to_str(NaclSigner(seed).peer_id)


def member(swarm: Swarm, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node", "member", *args],
        cwd=swarm.workdir,
        env=swarm.env(),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_only_members_take_part(tmp_path: Path) -> None:
    with Swarm(tmp_path) as swarm:
        members = {
            name: make_key(swarm, name, i) for i, name in enumerate(["m1", "m2", "m3", "lead"], 1)
        }
        for name, peer in members.items():
            out = member(swarm, "add", peer, "--name", name, "--expires", "1d")
            assert out.returncode == 0, out.stderr
            assert "rnetcert1:" in out.stdout
        listed = member(swarm, "list")
        assert all(peer in listed.stdout for peer in members.values()), listed.stdout
        boot = swarm.start_bootstrap(CLOSED, timeout=60)
        providers = [swarm.start_provider(name, CLOSED, wait=False) for name in ("m1", "m2", "m3")]
        for p in providers:
            p.wait_ready(60)
        # a peer without a certificate: the hub refuses its connection
        outsider_id = make_key(swarm, "outsider", 9)
        outsider = swarm.start_provider("outsider", CLOSED, wait=False)
        boot.wait_for(
            lambda e: (
                e.get("event") == "rejected"
                and e.get("sender") == outsider_id
                and (e.get("reason") == "not_member" or "not_member" in (e.get("reasons") or {}))
            ),
            30,
            what="outsider refused",
        )
        assert outsider.ready is None
        swarm.wait_until(
            lambda: all(len(p.peer_ids()) >= 3 for p in providers), 30, "members see each other"
        )
        run = run_pipe(swarm, swarm.data_root / "lead", 3, "What is 2+2?", *CLOSED, timeout=40)
        assert run.returncode == 0, f"{run.lines}\n{run.stderr[-2000:]}"
        result = run.result
        roles = set(result["scores"]) | {v for row in result["scores"].values() for v in row}
        assert roles <= {members[n] for n in ("m1", "m2", "m3")}
        assert outsider_id not in roles and outsider.ready is None
        # removing a member takes effect at the hub at once
        out = member(swarm, "remove", members["m3"])
        assert out.returncode == 0, out.stderr
        assert members["m3"] not in member(swarm, "list").stdout
