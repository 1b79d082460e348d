"""Whole sessions over a real swarm: bootstrap + 4 sim providers (processes on loopback).

One swarm serves this module's tests in order: ``rnet pipe`` with audit, the manual
adv -> ack -> finalize flow on a headless provider, two leaders at once, exactly two joiners,
and a rogue peer forging a score, an item, a late score and a result.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    assert_full_matrix,
    result_of,
    rnet,
    run_pipe,
    sessions_of,
)
from tests.node.swarm import Swarm

pytestmark = pytest.mark.slow


def test_pipe_3_gives_a_winner_with_a_full_matrix_and_audits(swarm4: Swarm, tmp_path: Path) -> None:
    leader_dir = tmp_path / "leader"
    run = run_pipe(swarm4, leader_dir, 3, "What is 2+2?")
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(run.lines) == 1, "--json prints exactly the result line"
    result = run.result
    executors, verifiers = assert_full_matrix(result)
    assert len(executors) + len(verifiers) == 3
    assert result["text"].strip() and result["aggregator"] == "robust"  # the default
    assert (result["requested"], result["joined"]) == (3, 3)
    assert result["missing"] == {"executors": [], "verifiers": [], "scores": {}, "invalid": {}}
    assert {"join", "execute", "verify", "total"} <= set(result["timings"])
    winner_avg = result["averages"][result["winner"]]
    assert result["score"] == pytest.approx(winner_avg)
    assert winner_avg == max(result["averages"].values())
    task = result["task"]

    # Every participant shows the same result, signed by the leader.
    providers = swarm4.providers
    by_id = {p.peer_id: p for p in providers}
    for peer in executors + verifiers:
        node = by_id[peer]
        shown = node.wait_for(
            lambda e: e.get("event") == "result" and e.get("task") == task, 20, what="result"
        )
        assert (shown["winner"], shown["leader"], shown["scores"]) == (
            result["winner"],
            result["leader"],
            result["scores"],
        )

    # The leader's transcript audits clean, and so does a participant's.
    listed = rnet("sessions", "--data-dir", str(leader_dir), "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["task"], r["role"], r["winner"]) for r in rows] == [
        (task, "leader", result["winner"])
    ]
    audit = rnet("audit", task, "--data-dir", str(leader_dir), cwd=tmp_path)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "audit OK" in audit.stdout
    participant_dir = swarm4.data_root / by_id[verifiers[0]].name
    audit = rnet("audit", task, "--data-dir", str(participant_dir), cwd=tmp_path)
    assert audit.returncode == 0, audit.stdout + audit.stderr

    # One changed byte in one stored envelope: the audit fails.
    db = sqlite3.connect(leader_dir / "sessions.sqlite3")
    with db:
        row_id, raw = db.execute(
            "SELECT id, raw FROM envelopes WHERE task = ? AND kind = 'score' "
            "UNION ALL SELECT id, raw FROM envelopes WHERE task = ? AND kind = 'scores' LIMIT 1",
            (task, task),
        ).fetchone()
        raw = bytearray(raw)
        raw[len(raw) // 2] ^= 0x01
        db.execute("UPDATE envelopes SET raw = ? WHERE id = ?", (bytes(raw), row_id))
    db.close()
    audit = rnet("audit", task, "--data-dir", str(leader_dir), cwd=tmp_path)
    assert audit.returncode == 1, audit.stdout
    assert "FAILED: envelope" in audit.stdout and "bad_signature" in audit.stdout
    assert "audit FAILED" in audit.stdout

    missing = rnet("audit", "no-such-task", "--data-dir", str(leader_dir), cwd=tmp_path)
    assert missing.returncode == 2  # not found


def test_manual_adv_ack_finalize_over_stdin(swarm4: Swarm) -> None:
    leader, *others = swarm4.providers
    task = "manual-01"
    out = leader.command(f"adv {task} What is 7 times 8?")
    assert task in out["text"]
    # The others auto-join; wait on the leader's own view of the session.
    leader.wait_for(
        lambda e: e.get("event") == "session" and e.get("task") == task and len(e["joined"]) == 3,
        30,
        what="3 joins",
    )
    out = leader.command(f"ack {task}")
    assert "executor" in out["text"]
    # Manual sessions do not finalize by themselves: they wait in "finalize" once scored.
    leader.wait_for(
        lambda e: (
            e.get("event") == "session" and e.get("task") == task and e["stage"] == "finalize"
        ),
        30,
        what="every score in",
    )
    assert result_of(leader, task) is None
    out = leader.command(f"finalize {task}")
    assert "winner" in out["text"]
    result = leader.wait_event("result", 10, task=task)
    executors, verifiers = assert_full_matrix(result)
    assert set(executors + verifiers) == {p.peer_id for p in others}
    for node in others:
        assert node.wait_event("result", 20, task=task)["winner"] == result["winner"]

    # Operator mistakes are clear errors, never crashes.
    assert "already" in leader.command(f"finalize {task}", ok=False)["text"]
    assert "no session" in leader.command("ack nope", ok=False)["text"]
    assert "led by another node" in others[0].command(f"finalize {task}", ok=False)["text"]
    assert "already exists" in leader.command(f"adv {task} again?", ok=False)["text"]
    assert "usage" in leader.command("adv", ok=False)["text"]
    assert "must" in leader.command("adv bad/topic hi", ok=False)["text"]


def test_two_leaders_at_once_do_not_mix(swarm4: Swarm) -> None:
    a, b, *_ = swarm4.providers
    since_a, since_b = a.mark(), b.mark()
    a.send("pipe 2 What is the capital of Japan?")
    b.send("pipe 2 What is the chemical symbol for gold?")
    out_a = a.wait_event("command_output", 40, since=since_a, command="pipe")
    out_b = b.wait_event("command_output", 40, since=since_b, command="pipe")
    assert out_a["ok"] and out_b["ok"], (out_a, out_b)
    res_a = a.wait_for(
        lambda e: e.get("event") == "result" and e["leader"] == a.peer_id, 5, since_a
    )
    res_b = b.wait_for(
        lambda e: e.get("event") == "result" and e["leader"] == b.peer_id, 5, since_b
    )
    assert res_a["task"] != res_b["task"]
    for res, leader, answers in (
        (res_a, a, ("Tokyo", "Kyoto", "Osaka")),
        (res_b, b, ("Au", "Ag", "Gd", "Go")),
    ):
        executors, verifiers = assert_full_matrix(res)
        assert leader.peer_id not in executors + verifiers
        assert any(word in res["text"] for word in answers), res["text"]
        # The roles each session assigned are the ones its result is over.
        assigned = sessions_of(leader, res["task"])[-1]
        assert set(assigned["executors"]) == set(executors)
        assert set(assigned["verifiers"]) == set(verifiers)


def test_exactly_two_joiners_split_one_and_one(swarm4: Swarm, tmp_path: Path) -> None:
    run = run_pipe(swarm4, tmp_path / "two", 2, "How many days are in a week?")
    assert run.returncode == 0, run.stderr[-3000:]
    executors, verifiers = assert_full_matrix(run.result)
    assert len(executors) == 1 and len(verifiers) == 1 and executors != verifiers


def test_forgeries_are_rejected_and_never_tallied(swarm4: Swarm, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "tests.e2e.rogue", "--data-dir", str(tmp_path / "rogue")]
    rogue = subprocess.Popen(
        [*argv, "--name", "rogue", "--timeout", "60"],
        cwd=swarm4.workdir,
        env=swarm4.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert rogue.stdout is not None
        first = json.loads(rogue.stdout.readline())
        assert first["rogue"] == "ready", first
        rogue_id = first["peer_id"]
        swarm4.wait_until(
            lambda: all(rogue_id in p.peer_ids() for p in swarm4.providers), 30, "rogue seen"
        )
        run = run_pipe(swarm4, tmp_path / "leader", 4, "Which planet is known as the Red Planet?")
        assert run.returncode == 0, run.stderr[-3000:]
        rogue_out, rogue_err = rogue.communicate(timeout=30)
        steps = [json.loads(line)["rogue"] for line in rogue_out.splitlines()]
        assert steps[-4:] == ["score_not_verifier", "item_forged", "result_forged", "score_late"], (
            steps,
            rogue_err[-2000:],
        )
    finally:
        if rogue.poll() is None:
            rogue.kill()
            rogue.wait(10)
    result = run.result
    task = result["task"]
    executors, verifiers = assert_full_matrix(result)
    assert rogue_id not in json.dumps(result["scores"])
    assert result["text"] != "FORGED RESULT"
    assert all(s != 0.01 for row in result["scores"].values() for s in row.values())

    # Every participant ignored the forged result (and says why) and shows the leader's.
    for node in swarm4.providers:
        if node.peer_id not in executors + verifiers:
            continue
        shown = node.wait_event("result", 20, task=task)
        assert shown["text"] == result["text"] and shown["leader"] == result["leader"]
        node.wait_for(
            lambda e: (
                e.get("event") == "rejected"
                and e.get("sender") == rogue_id
                # reported at once, or in the sender's summary line (one per interval); late when
                # the session had already ended here (a loaded machine may deliver the rogue's
                # forgeries after the real result)
                and (
                    e.get("reason") in ("not_leader", "late")
                    or "not_leader" in e.get("reasons", {})
                )
            ),
            20,
            what="forged result rejected",
        )
        assert not node.find(
            lambda e: e.get("event") == "result" and e.get("text") == "FORGED RESULT"
        )
    # The leader's audit agrees: nothing of the rogue's is in its transcript.
    leader_db = sqlite3.connect(tmp_path / "leader" / "sessions.sqlite3")
    senders = {
        s for (s,) in leader_db.execute("SELECT sender FROM envelopes WHERE task = ?", (task,))
    }
    leader_db.close()
    assert rogue_id not in senders
    audit = rnet("audit", task, "--data-dir", str(tmp_path / "leader"), cwd=tmp_path)
    assert audit.returncode == 0, audit.stdout


def test_bad_pipe_input_is_one_line_and_nonzero(tmp_path: Path) -> None:
    bad = rnet("pipe", "1", "hi", "--timeout", "5", cwd=tmp_path)
    assert bad.returncode == 2 and "at least 2" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_not_enough_participants_is_one_line_and_nonzero(swarm4: Swarm, tmp_path: Path) -> None:
    # A join window shorter than any join's trip: the session cannot start, and says so.
    run = run_pipe(swarm4, tmp_path / "leader", 2, "What is 2+2?", "--join-deadline", "0.01")
    assert run.returncode == 1
    assert len(run.lines) == 1 and run.lines[0]["event"] == "error"
    assert "not enough participants" in run.lines[0]["message"]
    task = run.lines[0]["task"]
    for node in swarm4.providers:
        node.wait_event("session", 20, task=task, stage="aborted")


def test_no_auto_join_node_saw_everything_and_joined_nothing(swarm4: Swarm) -> None:
    shy = swarm4.shy  # type: ignore[attr-defined]
    adverts = shy.find_all(lambda e: e.get("event") == "message" and e.get("kind") == "advertise")
    assert len(adverts) >= 5, "every advertisement of this module reached it"
    assert not shy.find(lambda e: e.get("event") in ("session", "result"))


def test_audit_and_sessions_find_every_store_under_the_data_root(swarm4: Swarm) -> None:
    # The shared swarm's nodes keep their stores under one data root (RNET_DATA_DIR).
    env = {**swarm4.env()}
    listed = subprocess.run(
        [sys.executable, "-m", "node", "sessions", "--json"],
        env=env, capture_output=True, text=True, timeout=30, cwd=swarm4.workdir,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    manual = [r for r in rows if r["task"] == "manual-01"]
    assert {r["node"] for r in manual} == {p.name for p in swarm4.providers}
    assert [r["role"] for r in manual].count("leader") == 1
    audit = subprocess.run(
        [sys.executable, "-m", "node", "audit", "manual-01"],
        env=env, capture_output=True, text=True, timeout=30, cwd=swarm4.workdir,
    )  # fmt: skip
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert audit.stdout.count("audit OK") == 4
