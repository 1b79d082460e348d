"""``rnet eval`` end to end: real swarms of node processes on loopback -- simulated providers
started by ``rnet eval --local`` (node.localswarm), and providers on the Ollama test double
through the official client (tests/node/swarm.py) -- the CLI as a subprocess."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from node.localswarm import child_env
from tests.node.swarm import Swarm
from tests.ollama_double import spawn_double

pytestmark = pytest.mark.slow


def rnet_eval(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 150
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node", "eval", *args],
        cwd=cwd,
        env=env or child_env(data_root=cwd / "data"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_eval_on_a_local_sim_swarm_reports_prints_again_and_resumes(tmp_path: Path) -> None:
    data = tmp_path / "evaldata"
    flags = ["--data-dir", str(data), "--backend", "sim", "--sim-p", "0.6", "--sim-seed", "5"]
    # --local 4: a bootstrap and 4 provider processes (node.localswarm) with the same sim flags
    out = rnet_eval(tmp_path, "smoke", "--local", "4", "--timeout", "30", "--json", *flags)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["simulated"] and "SIMULATED" in summary["note"]
    assert summary["answered"] == summary["questions"] == 5 and summary["finished"]
    assert summary["executors_per_session"] == 2 and summary["verifiers_per_session"] == 2
    for m in summary["methods"].values():
        assert m["predicted"] is not None and m["n"] >= 5
        assert m["latency_ms"]["p50"] > 0 and m["calls_per_question"] >= 1
    run_id = summary["run"]
    executors = {e["model"] for r in sqlite_records(data / "eval.sqlite", run_id)
                 for e in r["executors"]}  # fmt: skip
    assert executors == {"sim/honest"}
    logs = sorted(p.name for p in (data / "local" / run_id / "logs").iterdir())
    assert logs == ["bootstrap.log", "p1.log", "p2.log", "p3.log", "p4.log"]
    reports = data / "reports" / run_id
    assert json.loads((reports / "report.json").read_text())["run"] == run_id
    assert (reports / "accuracy.png").read_bytes().startswith(b"\x89PNG")

    again = rnet_eval(tmp_path, "--report", run_id, *flags)
    assert again.returncode == 0, again.stderr
    assert f"rnet eval {run_id}" in again.stdout and "SIMULATED" in again.stdout
    swarm_row = next(line for line in again.stdout.splitlines() if line.startswith("| swarm"))
    assert f"{100 * summary['methods']['swarm']['accuracy']:.1f}%" in swarm_row

    resumed = rnet_eval(tmp_path, "--resume", run_id, *flags)  # nothing left to ask
    assert resumed.returncode == 0, resumed.stderr
    assert "5/5 questions" in resumed.stdout
    listed = rnet_eval(tmp_path, "--runs", *flags)
    assert run_id in listed.stdout and "finished" in listed.stdout


def test_bad_input_is_refused_before_joining(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok?", "answer": 1}\n{"question": ""}\n')
    # no swarm: none is needed to refuse
    out = rnet_eval(tmp_path, str(bad), "--data-dir", str(tmp_path / "d"), timeout=30)
    assert out.returncode == 2
    assert "bad.jsonl:2" in out.stderr and '"question" must be' in out.stderr
    out = rnet_eval(tmp_path, "--report", "run-nope", "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 2 and "no run 'run-nope'" in out.stderr
    out = rnet_eval(tmp_path, "smoke", "--providers", "1", "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 2 and "--providers must be at least 2" in out.stderr


def test_eval_on_providers_backed_by_ollama(tmp_path: Path) -> None:
    config = tmp_path / "double.json"
    config.write_text(
        json.dumps({"models": [{"name": "m1", "solves": 0.8}, {"name": "m2", "solves": 0.3}]})
    )
    with spawn_double("--config", str(config)) as url, Swarm(tmp_path) as swarm:
        swarm.extra_env.update({"RNET_BACKEND": "ollama", "OLLAMA_HOST": url})
        swarm.start_bootstrap(timeout=60)
        nodes = [
            swarm.start_provider(None, ["--model", m], wait=False) for m in ("m1", "m1", "m2", "m2")
        ]
        for node in nodes:
            node.wait_ready(60)
        out = rnet_eval(
            tmp_path,
            "smoke",
            "--providers",
            "4",
            "--single",
            "m2",
            "--timeout",
            "30",
            "--data-dir",
            str(tmp_path / "evaldata"),
            env=swarm.env(),
        )
        assert out.returncode == 0, out.stderr[-3000:]
        assert "SIMULATED" not in out.stdout
        assert "| single: m2, asked directly |" in out.stdout
        run_id = re.search(r"rnet eval (run-[\w-]+)", out.stdout).group(1)
        store = sqlite_records(tmp_path / "evaldata" / "eval.sqlite", run_id)
    assert len(store) == 5
    for record in store:
        answered = [e for e in record["executors"] if e["text"]]
        assert answered and {e["model"] for e in answered} <= {"m1", "m2"}
        # the double's judges are exact: the swarm is right iff one of its executors was
        assert record["swarm"]["correct"] == any(e["correct"] for e in answered), record
        assert record["single"]["source"] == "direct" and record["single"]["model"] == "m2"
        assert record["cost"]["single"]["calls"] == 1


def sqlite_records(path: Path, run_id: str) -> list[dict]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT record FROM records WHERE run = ? ORDER BY idx", (run_id,))
        return [json.loads(text) for (text,) in rows]
