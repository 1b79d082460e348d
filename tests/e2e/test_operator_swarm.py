"""What an operator sees of a real swarm (processes on loopback): a bootstrap with another peer ID
than the one configured, a provider whose model is not there yet (no roles, says why, joins once
the model answers), ``pipe N`` with fewer joiners, the pipe's live view on a terminal, and Ctrl-C
during a pipe."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from node.keys import bootstrap_pair
from node.store import Store
from tests.e2e.conftest import run_pipe
from tests.node.swarm import Swarm
from tests.ollama_double import spawn_double

pytestmark = pytest.mark.slow

MODEL = "qwen2.5:1.5b"


def is_log(text: str):
    return lambda e: e.get("event") == "log" and text in e.get("message", "")


def test_a_bootstrap_with_another_peer_id_is_named_in_one_clear_line(tmp_path: Path) -> None:
    with Swarm(tmp_path) as swarm:
        boot = swarm.start_bootstrap()
        _, wrong = bootstrap_pair(bytes([7]) * 32, "127.0.0.1", swarm.bootstrap_port)
        expected = wrong.rsplit("/", 1)[1]
        node = swarm.start_provider("p1", ["--bootstrap", wrong], wait=False)
        said = node.wait_for(is_log("check BOOTSTRAP_NODE"), 30, what="the wrong peer ID")
        assert said["message"].startswith(
            f"the bootstrap at /ip4/127.0.0.1/tcp/{swarm.bootstrap_port} is {boot.peer_id}, "
            f"expected {expected}: check BOOTSTRAP_NODE"
        )
        node.command("local")  # the node is alive and answers
        assert node.ready is None
        assert not node.find(lambda e: "handshake" in json.dumps(e)), "no libp2p handshake noise"
        assert node.stderr_lines == []


def pipe_on_a_terminal(swarm: Swarm, data_dir: Path, *args: str, timeout: float = 40.0):
    """``rnet pipe`` with stdout and stderr on a pseudo-terminal: (exit code, what it showed)."""
    master, slave = pty.openpty()
    argv = [sys.executable, "-m", "node", "pipe", *args, "--data-dir", str(data_dir)]
    proc = subprocess.Popen(
        [*argv, "--timeout", str(timeout)],
        cwd=swarm.workdir,
        env=swarm.env(),
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    shown = b""
    deadline = time.monotonic() + timeout + 15
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the pipe exited and the terminal closed
                break
            if not chunk:
                break
            shown += chunk
        return proc.wait(timeout=15), shown.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def test_a_provider_without_its_model_takes_no_role_until_the_model_answers(
    tmp_path: Path,
) -> None:
    with (
        spawn_double("--model", "other:1b", "--pullable", MODEL, "--judge-score", "0.8") as url,
        Swarm(tmp_path) as swarm,
    ):
        swarm.start_bootstrap()
        p1, _p2 = swarm.start_providers(2)
        lame = swarm.start_provider(
            "lame", ["--backend", "ollama", "--model", MODEL, "--ollama-host", url]
        )
        lame.wait_for(is_log("takes no executor or verifier role"), 20, what="no roles")
        p1.wait_for(
            lambda e: (
                e.get("event") == "peer_info"
                and e.get("peer_id") == lame.peer_id
                and e.get("status") == f"no model: {MODEL} is not pulled"
            ),
            20,
            what="the lame node's presence says why",
        )

        # pipe 3 with two able providers: it runs with two and says so.
        run = run_pipe(swarm, tmp_path / "pipe-a", 3, "What is 2+2?", "--join-deadline", "2")
        assert run.returncode == 0, run.stderr[-2000:]
        result = run.result
        assert (result["requested"], result["joined"]) == (3, 2)
        assert lame.peer_id not in result["scores"]
        assert (
            "only 2 of the 3 requested providers joined"
            in (tmp_path / "pipe-a" / "pipe.log").read_text()
        ), "the leader's log warns (the console shows it in its log pane)"
        lame.wait_for(is_log(f"not joining {result['task']}"), 10)
        assert not lame.find(lambda e: e.get("event") == "session")

        # The model is pulled: the node notices by itself and takes roles again.
        httpx.post(f"{url}/api/pull", json={"model": MODEL, "stream": False}, timeout=10)
        lame.wait_for(is_log("the model answers now"), 30, what="the re-probe")
        p1.wait_for(
            lambda e: (
                e.get("event") == "peer_info"
                and e.get("peer_id") == lame.peer_id
                and e.get("status") == ""
            ),
            20,
            what="the presence says it is back",
        )

        # On a terminal: the session drawn live, then the result; all three joined.
        code, shown = pipe_on_a_terminal(swarm, tmp_path / "pipe-b", "3", "What is 2+2?")
        assert code == 0, shown
        lines = [part.rstrip() for part in shown.replace("\r\x1b[K", "\n").splitlines()]
        assert any("advertise" in line and "joined 0/3" in line for line in lines), shown
        assert any("execute" in line and "joined 3/3" in line for line in lines), shown
        assert any("done" in line and "scores" in line for line in lines), shown
        assert any(": winner " in line for line in lines), shown
        assert "warning" not in shown and "Traceback" not in shown
        assert lame.find(lambda e: e.get("event") == "session")


def test_ctrl_c_during_a_pipe_leaves_its_session_stored_as_aborted(tmp_path: Path) -> None:
    with Swarm(tmp_path) as swarm:
        swarm.start_bootstrap()
        (p1,) = swarm.start_providers(1)
        data_dir = tmp_path / "pipe"
        argv = [sys.executable, "-m", "node", "pipe", "5", "hi", "--join-deadline", "30"]
        proc = subprocess.Popen(
            [*argv, "--data-dir", str(data_dir)],
            cwd=swarm.workdir,
            env=swarm.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            p1.wait_for(lambda e: e.get("event") == "session", 30, what="the pipe's session")
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=15) == 130
        finally:
            if proc.poll() is None:
                proc.kill()
        with Store.in_data_dir(data_dir, readonly=True) as store:
            assert [(s.role, s.stage) for s in store.sessions()] == [("leader", "aborted")]
