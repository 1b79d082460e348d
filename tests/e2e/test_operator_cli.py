"""The CLI a newcomer meets, as subprocesses: ``--version``, help that tells one truth,
``rnet sessions``/``rnet audit`` finding the stores of ``rnet up`` with no flags, a reader that
closes the pipe early, and a data dir already in use."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from node.keys import DataDirLock
from node.store import Store
from tests.e2e.test_audit import TASK, Transcript, honest_session
from tests.node.swarm import ROOT


def run(*args: str, env: dict[str, str] | None = None, module: str = "node", **kw: object):
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        **kw,
    )


def test_version() -> None:
    for module in ("node", "console.cli"):
        proc = run("--version", module=module)
        assert proc.returncode == 0 and proc.stdout.startswith("rnet 0."), proc


def test_up_help_tells_one_truth_for_port_and_slm_help_only_its_flags() -> None:
    up = run("up", "--help", module="console.cli")
    assert up.returncode == 0, up.stderr
    text = " ".join(up.stdout.split())
    assert "--port PORT the local bootstrap's TCP port (default: a free one)" in text
    assert "8888" not in text
    slm = run("slm", "--help")
    assert slm.returncode == 0, slm.stderr
    for flag in ("--model", "--backend", "--ollama-host", "--no-stream", "--json"):
        assert flag in slm.stdout
    for flag in ("--bootstrap", "--port", "--router", "--max-dials", "--hung-after", "--no-ui"):
        assert flag not in slm.stdout


def build_root(root: Path) -> None:
    """The data root after `make demo` + `p` and an `rnet pipe`: stores one and two levels
    down (``up/leader``, ``up/provider-1``, ``pipe``)."""
    for node in ("up/leader", "up/provider-1", "pipe"):
        transcript = Transcript(root / node, role="leader" if node == "up/leader" else "verifier")
        honest_session(transcript)
        transcript.store.close()
    (root / "up" / "logs").mkdir()


def test_sessions_and_audit_find_the_stores_of_rnet_up_with_no_flags(tmp_path: Path) -> None:
    build_root(tmp_path)
    env = {"RNET_DATA_DIR": str(tmp_path)}
    listed = run("sessions", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted((r["node"], r["role"]) for r in rows) == [
        ("pipe", "verifier"),
        ("up/leader", "leader"),
        ("up/provider-1", "verifier"),
    ]
    text = run("sessions", env=env)
    assert "up/provider-1" in text.stdout, text.stdout  # whole, not cut to 12 characters
    audit = run("audit", TASK, env=env)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert audit.stdout.count("audit OK") == 3

    # --data-dir at the `rnet up` root: its nodes, and only they.
    up = run("sessions", "--json", "--data-dir", str(tmp_path / "up"), env=env)
    assert sorted(json.loads(line)["node"] for line in up.stdout.splitlines()) == [
        "leader",
        "provider-1",
    ]
    audit = run("audit", TASK, "--data-dir", str(tmp_path / "up"), env=env)
    assert audit.returncode == 0 and audit.stdout.count("audit OK") == 2, audit.stdout

    missing = run("audit", "task-none", env=env)
    assert missing.returncode == 2  # not found
    assert f"no store under {tmp_path} holds session task-none" in missing.stderr
    empty = run("sessions", env={"RNET_DATA_DIR": str(tmp_path / "nothing")})
    assert empty.returncode == 0 and "no node has a store under" in empty.stdout


def test_a_reader_that_stops_early_ends_the_listing_quietly(tmp_path: Path) -> None:
    with Store.in_data_dir(tmp_path / "node") as store:
        for i in range(3000):  # far more than a pipe buffer holds
            store.upsert_session(
                f"task-{i:05d}", leader="L" * 52, role="leader", prompt="q" * 40, stage="done",
                at_ms=i,
            )  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "node", "sessions", "--json"],
        cwd=ROOT,
        env={**os.environ, "RNET_DATA_DIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = [proc.stdout.readline(), proc.stdout.readline()]  # `| head -2`
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=30) == 0
    assert all(line.startswith('{"node"') for line in first)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_a_data_dir_in_use_says_to_give_the_node_its_own(tmp_path: Path) -> None:
    lock = DataDirLock(tmp_path / "n")
    assert lock.try_acquire()
    try:
        proc = run("node", "--no-ui", "--backend", "sim", "--data-dir", str(tmp_path / "n"))
    finally:
        lock.release()
    assert proc.returncode == 2
    assert "another node is running with data dir" in proc.stderr
    assert "give this one its own --data-dir" in proc.stderr and "--name" not in proc.stderr


def test_a_node_without_bootstrap_settings_says_why_it_dials_the_demo_bootstrap(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOOTSTRAP_", "RNET_"))}
    env["RNET_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen(
        [sys.executable, "-m", "node", "node", "--no-ui", "--json", "--backend", "sim"],
        cwd=tmp_path,  # no .env here
        env={**env, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    said = ""
    deadline = time.monotonic() + 30
    try:
        while not said and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
            line = proc.stdout.readline() if ready else ""
            if not line:
                break
            event = json.loads(line)
            if "demo bootstrap" in event.get("message", ""):
                said = event["message"]
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert said.startswith("dialing the demo bootstrap at /ip4/127.0.0.1/tcp/8888 (the default ")
    assert "BOOTSTRAP_NODE" in said and "rnet bootstrap" in said
