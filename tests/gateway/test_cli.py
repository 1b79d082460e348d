"""``rnet serve`` refuses unsafe or malformed settings before starting anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.node.swarm import DEMO_BOOTSTRAP_ID, free_port

ROOT = Path(__file__).resolve().parents[2]


def rnet(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "RNET_DATA_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "node", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--listen", "0.0.0.0:11500"], "--token"),
        (["--listen", "192.168.0.7:1"], "--token"),
        (["--listen", "nonsense:port"], "listen address"),
        (["--providers", "1"], "at least 2"),
        (["--timeout", "-3"], "positive"),
        (["--aggregator", "vibes"], "invalid choice"),
    ],
)
def test_serve_rejects_bad_settings(tmp_path: Path, args: list[str], needle: str) -> None:
    proc = rnet(tmp_path, "serve", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stderr
    assert not list(tmp_path.iterdir())  # nothing started, nothing written


def test_node_serve_flag_refuses_public_bind_without_token(tmp_path: Path) -> None:
    # A bootstrap address nobody listens on: this node must not wander into another test's swarm.
    nowhere = f"/ip4/127.0.0.1/tcp/{free_port()}/p2p/{DEMO_BOOTSTRAP_ID}"
    proc = rnet(
        tmp_path,
        "node",
        "--no-ui",
        "--backend",
        "sim",
        "--bootstrap",
        nowhere,
        "--serve",
        "0.0.0.0:1",
    )
    assert proc.returncode == 2
    assert "--token" in proc.stderr or "--token" in proc.stdout


def test_serve_help_documents_the_gateway(tmp_path: Path) -> None:
    proc = rnet(tmp_path, "serve", "--help")
    assert proc.returncode == 0
    for flag in ("--listen", "--providers", "--timeout", "--aggregator", "--token", "--bootstrap"):
        assert flag in proc.stdout


class _NoSessionsRuntime:
    """A runtime without a sessions engine: the gateway must still serve, and say so per request."""

    peer_id_str = "12D3KooWSelf"

    def provider_peers(self) -> list:
        return []


@pytest.mark.parametrize(("no_ui", "json_lines"), [(False, False), (True, False), (True, True)])
async def test_serve_from_args_announces_only_when_headless(
    capsys: pytest.CaptureFixture[str], no_ui: bool, json_lines: bool
) -> None:
    import argparse
    import json

    import httpx

    from node.assemble import AssembledNode

    args = argparse.Namespace(serve="127.0.0.1:0", no_ui=no_ui, json=json_lines)
    node = AssembledNode(_NoSessionsRuntime(), args=args)  # type: ignore[arg-type]
    handle = await node.serve_gateway()
    assert handle is not None
    try:
        out = capsys.readouterr().out
        if not no_ui:
            assert out == ""  # under the console, stdout is the screen
        elif json_lines:
            assert json.loads(out)["url"] == handle.url
        else:
            assert handle.url in out and "/v1" in out
        async with httpx.AsyncClient(base_url=handle.url) as client:
            reply = await client.post(
                "/api/generate", json={"model": "swarm", "prompt": "x", "stream": False}
            )
        assert reply.status_code == 503 and "no sessions engine" in reply.json()["error"]
    finally:
        await handle.close()
    idle = AssembledNode(_NoSessionsRuntime(), args=argparse.Namespace(serve=None))  # type: ignore[arg-type]
    assert await idle.serve_gateway() is None
