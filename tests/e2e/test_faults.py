"""Sessions under faults, and over the real model path (official ``ollama`` client -> HTTP double).

- an executor SIGKILLed mid-session: the session finalizes by its execute deadline with the
  others, the dead executor listed missing (never scored 0.00);
- providers on the Ollama test double: a full session; then judges that fail (unparsable
  output, after the judge's one retry) are *missing* verifiers, never 0.00 scores.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import assert_full_matrix, run_pipe
from tests.node.swarm import Swarm
from tests.ollama_double import OllamaDouble

pytestmark = pytest.mark.slow


def test_killed_executor_is_missing_and_the_session_still_finalizes(tmp_path: Path) -> None:
    with Swarm(tmp_path / "swarm") as swarm:
        swarm.start_bootstrap(timeout=60)
        # Model time long enough to kill an executor between its assignment and its answer.
        providers = swarm.start_providers(4, ["--sim-gen-ms", "1500"], timeout=60)
        swarm.wait_until(lambda: all(len(p.peer_ids()) >= 4 for p in providers), 60, "mesh")
        argv = [sys.executable, "-m", "node", "pipe", "4", "What is 2+2?", "--json"]
        argv += ["--timeout", "40", "--data-dir", str(tmp_path / "leader")]
        argv += ["--exec-deadline", "4", "--verify-deadline", "4"]
        started = time.monotonic()
        pipe = subprocess.Popen(
            argv, cwd=swarm.workdir, env=swarm.env(), stdout=subprocess.PIPE, text=True
        )
        try:
            executors: list = []

            def assigned() -> bool:
                executors[:] = [
                    p for p in providers if p.find(lambda e: e.get("role") == "executor")
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
        import json

        result = json.loads(out.strip().splitlines()[-1])
        assert result["winner"] == survivor.peer_id
        assert result["missing"]["executors"] == [victim.peer_id]
        assert result["averages"][victim.peer_id] is None
        assert all(s is None for s in result["scores"][victim.peer_id].values())
        assert all(s is not None for s in result["scores"][survivor.peer_id].values())
        assert wall < 40, "the pipe kept within its timeout"


def test_ollama_double_full_session_then_failing_judges_are_missing(tmp_path: Path) -> None:
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

        # Every judge but m1's now answers garbage: at least one verifier fails in any split.
        for model in models[1:]:
            double.add_model(model, judge="this is not a score")
        since = [p.mark() for p in providers]
        # Short verify deadline: a failed judge sends nothing, so the leader waits it out.
        run = run_pipe(
            swarm,
            tmp_path / "leader",
            4,
            "What is the capital of France?",
            "--verify-deadline",
            "3",
        )
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


def test_not_enough_participants_is_one_line_and_nonzero(tmp_path: Path) -> None:
    with Swarm(tmp_path / "swarm") as swarm:
        swarm.start_bootstrap(timeout=60)
        joiner = swarm.start_provider("joiner", timeout=60)
        shy = swarm.start_provider("shy", ["--no-auto-join"], timeout=60)
        swarm.wait_until(lambda: shy.peer_id in joiner.peer_ids(), 60, "mesh")
        run = run_pipe(swarm, tmp_path / "leader", 2, "What is 2+2?", "--join-deadline", "1.5")
        assert run.returncode == 1
        assert (
            len(run.lines) == 1 and "not enough participants: 1 joined" in run.lines[0]["message"]
        )
        assert run.wall_s < 30
        # The shy node saw the advertisement but took no part.
        assert shy.find(lambda e: e.get("event") == "message" and e.get("kind") == "advertise")
        assert not shy.find(lambda e: e.get("event") == "session")
        assert joiner.wait_event("session", 10, stage="aborted")["role"] == "pending"


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
