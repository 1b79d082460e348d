"""``rnet slm``: the one-shot command in a real subprocess (sim, a double, nothing listening)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ollama_double import spawn_double

ROOT = Path(__file__).resolve().parents[2]


def rnet(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OLLAMA_HOST", "RNET_MODEL", "RNET_BACKEND")
    }
    full_env["PYTHONPATH"] = str(ROOT)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "node", "slm", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_sim_answer_is_labelled() -> None:
    proc = rnet("--backend", "sim", "What is 2+2?")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[simulated sim/honest@local] The answer is 4.\n"


def test_sim_json_output() -> None:
    proc = rnet("--backend", "sim", "--json", "--name", "n1", "What", "is", "2+2?")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["simulated"] is True
    assert data["model"] == "sim/honest"
    assert data["text"].startswith("[simulated sim/honest@n1]")


@pytest.mark.skipif(_port_open(11434), reason="something listens on 11434 (a real Ollama?)")
def test_nothing_on_the_default_port_prints_the_hint() -> None:
    proc = rnet("hi")
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "rnet slm: Ollama is not reachable at http://127.0.0.1:11434 — start it with "
        "`ollama serve` (or point --ollama-host / OLLAMA_HOST at a running server)"
    ]


def test_against_the_double_via_environment() -> None:
    with spawn_double("--model", "qwen2.5:1.5b", "--answer", "Four.") as url:
        proc = rnet("What is 2+2?", env={"OLLAMA_HOST": url})
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "Four.\n"
        missing = rnet("--model", "phi3:mini", "hi", env={"OLLAMA_HOST": url})
        assert missing.returncode == 1
        assert "`ollama pull phi3:mini`" in missing.stderr
        assert len(missing.stderr.strip().splitlines()) == 1


def test_empty_prompt_is_a_usage_error() -> None:
    proc = rnet("--backend", "sim", "  ")
    assert proc.returncode == 2
    assert "prompt is empty" in proc.stderr
