"""Sessions over the real model path (official ``ollama`` client -> HTTP test double), and faults.

One swarm of four providers, each on its own model of the double, runs three sessions in turn:

1. a healthy ``pipe 3``: a winner with a full score matrix;
2. every judge but one answers garbage: failing verifiers are *missing*, never 0.00;
3. answers take 1.5 s and one executor is SIGKILLed after its assignment: the session finalizes
   by its execute deadline with the other executor, the dead one listed missing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import assert_full_matrix, run_pipe
from tests.node.swarm import Swarm
from tests.ollama_double import OllamaDouble

pytestmark = pytest.mark.slow


def test_ollama_sessions_failing_judges_and_a_killed_executor(tmp_path: Path) -> None:
    models = ["m1", "m2", "m3", "m4"]
    with OllamaDouble(models=models).in_thread() as double, Swarm(tmp_path / "swarm") as swarm:
        swarm.start_bootstrap(timeout=60)
        providers = [
            swarm.start_provider(
                f"o{i}",
                ["--backend", "ollama", "--ollama-host", double.url, "--model", model],
                wait=False,
            )
            for i, model in enumerate(models, 1)
        ]
        for p in providers:
            p.wait_ready(60)
        swarm.wait_until(lambda: all(len(p.peer_ids()) >= 4 for p in providers), 60, "mesh")
        model_of = {p.peer_id: m for p, m in zip(providers, models, strict=True)}

        # 1. healthy
        run = run_pipe(swarm, tmp_path / "leader", 3, "What is 2+2?")
        assert run.returncode == 0, run.stderr[-3000:]
        result = run.result
        assert_full_matrix(result)
        assert result["text"] == f"{model_of[result['winner']]} answers: What is 2+2?"
        assert all(
            s == pytest.approx(0.8) for row in result["scores"].values() for s in row.values()
        )
        # The official client did the talking: chat requests, the judge's with a JSON schema.
        chats = double.requests_to("/api/chat")
        assert any(isinstance(r.body, dict) and r.body.get("format") for r in chats)

        # 2. every judge but m1's answers garbage: at least one verifier fails in any split.
        for model in models[1:]:
            double.add_model(model, judge="this is not a score")
        since = [p.mark() for p in providers]
        # Long deadlines: a verifier whose judge fails says so (a failure report in its scores
        # batch), so the leader finalizes once every cell is scored or reported, instead of
        # waiting out the verify deadline (45 s after the assignment here).
        deadlines = ["--exec-deadline", "20", "--verify-deadline", "25"]
        run = run_pipe(
            swarm, tmp_path / "leader", 4, "What is the capital of France?", *deadlines, timeout=60
        )
        assert run.wall_s < 30, "the leader waited for scores it was told would not come"
        task = next(
            e["task"]
            for p, s in zip(providers, since, strict=True)
            for e in p.find_all(lambda e: e.get("event") == "result", s)
        )
        shown = next(
            e
            for p in providers
            for e in p.find_all(lambda e: e.get("event") == "result" and e.get("task") == task)
        )
        verifiers = list(next(iter(shown["scores"].values())))
        broken = [v for v in verifiers if model_of[v] != "m1"]
        assert broken, "the split always has a failing judge"
        for v in broken:
            assert v in shown["missing"]["verifiers"]
            assert all(row[v] is None for row in shown["scores"].values())
        assert all(
            s is None or s == pytest.approx(0.8)
            for row in shown["scores"].values()
            for s in row.values()
        ), "no failed judgement became a 0.00"
        if any(model_of[v] == "m1" for v in verifiers):
            assert run.returncode == 0 and shown["winner"] is not None
        else:
            # No judge worked: nothing can be ranked, and the pipe says so in one line.
            assert run.returncode == 1 and shown["winner"] is None
            assert len(run.lines) == 1 and run.lines[0]["event"] == "error"

        # 3. healthy judges, slow answers; kill one executor between assignment and answer.
        for model in models:
            double.add_model(model, delay_s=1.5)
        since = [p.mark() for p in providers]
        argv = [sys.executable, "-m", "node", "pipe", "4", "What is 2+2?", "--json"]
        argv += ["--timeout", "40", "--data-dir", str(tmp_path / "leader")]
        argv += ["--exec-deadline", "4", "--verify-deadline", "3"]
        started = time.monotonic()
        pipe = subprocess.Popen(
            argv, cwd=swarm.workdir, env=swarm.env(), stdout=subprocess.PIPE, text=True
        )
        try:
            executors: list = []

            def assigned() -> bool:
                executors[:] = [
                    p
                    for p, s in zip(providers, since, strict=True)
                    if p.find(lambda e: e.get("event") == "session" and e["role"] == "executor", s)
                ]
                return len(executors) == 2

            swarm.wait_until(assigned, 30, "two executors assigned")
            victim, survivor = executors
            victim.kill()
            out, _ = pipe.communicate(timeout=60)
        finally:
            if pipe.poll() is None:
                pipe.kill()
                pipe.wait(10)
        wall = time.monotonic() - started
        assert pipe.returncode == 0, out
        result = json.loads(out.strip().splitlines()[-1])
        assert result["winner"] == survivor.peer_id
        assert result["missing"]["executors"] == [victim.peer_id]
        assert result["averages"][victim.peer_id] is None
        assert all(s is None for s in result["scores"][victim.peer_id].values())
        assert all(s is not None for s in result["scores"][survivor.peer_id].values())
        assert wall < 40, "the pipe kept within its timeout"


def test_unreachable_bootstrap_gives_up_within_the_timeout(tmp_path: Path) -> None:
    from tests.node.swarm import DEMO_BOOTSTRAP_ID, free_port

    maddr = f"/ip4/127.0.0.1/tcp/{free_port()}/p2p/{DEMO_BOOTSTRAP_ID}"
    argv = [sys.executable, "-m", "node", "pipe", "3", "hi", "--timeout", "4"]
    argv += ["--bootstrap", maddr, "--data-dir", str(tmp_path / "leader")]
    started = time.monotonic()
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "RNET_BACKEND": "sim"},
        cwd=tmp_path,
    )
    wall = time.monotonic() - started
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"rnet pipe: could not reach the bootstrap {maddr} in time"
    ]
    assert wall < 4 + 3, f"took {wall:.1f} s"  # start-up of the interpreter is the only slack
