"""``rnet audit`` against real stores of a real session (issue 15): an honest session verifies
from the leader's, a verifier's and an executor's store; every edit someone with a copy of a
store could make is caught, and the audit says what is wrong. Exit codes: 0 verified, 1 failed,
2 not found.

One session runs on a real swarm (bootstrap + 4 sim providers, separate processes) with
``rnet pipe``; each test edits its own copy of a store (SQLite backup API) with plain SQL, the way
someone editing the file would, and runs ``rnet audit`` as a subprocess.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from node.keys import KEY_FILE, parse_seed
from node.store import Store
from protocol.envelope import open_envelope, seal
from protocol.identity import NaclSigner, peer_id_to_str
from protocol.messages import Advertise, Result
from protocol.tally import tally
from tests.e2e.conftest import rnet, run_pipe
from tests.node.swarm import Swarm
from tests.protocol.helpers import TASK as PROTO_TASK
from tests.protocol.helpers import Swarm as ProtoSwarm
from tests.protocol.strategies import SIGNERS

STORE = "sessions.sqlite3"
TASK = PROTO_TASK  # the hand-made transcript's task (``honest_session``)


@dataclasses.dataclass
class Transcript:
    """A node's store filled by hand (no network): ``honest_session`` writes what the node of
    ``role`` would have stored of one v2 session, and the node's key next to it."""

    data_dir: Path
    role: str = "leader"
    store: Store = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.store = Store.in_data_dir(self.data_dir)


def honest_session(t: Transcript) -> None:
    """One session run by the protocol's in-memory swarm; what the leader (``role`` leader) or
    a verifier stored, written into ``t.store`` with that node's key in the data dir."""
    swarm = ProtoSwarm(providers=3, auto_assign_at=3, advertise=Advertise(prompt="q"))
    swarm.run_to_end()
    result = swarm.leader.result
    assert result is not None
    node = swarm.leader_id if t.role == "leader" else swarm.leader.verifiers[0]
    index = next(i for i, s in enumerate(SIGNERS) if s.peer_id == node)
    (t.data_dir / KEY_FILE).write_text(bytes([index + 1]).hex() * 32 + "\n")  # SIGNERS' seeds
    t.store.upsert_session(
        TASK, leader=peer_id_to_str(swarm.leader_id), role=t.role, prompt="q", stage="done",
        at_ms=1,
    )  # fmt: skip
    for raw in swarm.stored[node]:
        env = open_envelope(raw)
        t.store.record_envelope(
            task=env.task, kind=env.kind, sender=peer_id_to_str(env.sender), seq=env.seq,
            ts_ms=env.ts_ms, raw=raw, direction="sent" if env.sender == node else "accepted",
            at_ms=2,
        )  # fmt: skip
    winner = peer_id_to_str(result.winner) if result.winner else None
    t.store.record_result(
        TASK, {"leader": peer_id_to_str(swarm.leader_id), "winner": winner,
               "score": result.score, "text": result.text}, at_ms=3,
    )  # fmt: skip


@dataclasses.dataclass
class Session:
    task: str
    result: dict[str, Any]
    leader_dir: Path
    dirs: dict[str, Path]  # base58 peer id -> data dir, every participant


@pytest.fixture(scope="module")
def session(swarm4: Swarm, tmp_path_factory: pytest.TempPathFactory) -> Session:
    leader_dir = tmp_path_factory.mktemp("audit") / "leader"
    run = run_pipe(swarm4, leader_dir, 4, "What is 2+2?")
    assert run.returncode == 0, run.stderr[-3000:]
    result = run.result
    task = result["task"]
    dirs = {p.peer_id: swarm4.data_root / p.name for p in swarm4.providers}
    # every participant stores the reveal and the result as they arrive: wait for them
    deadline = time.monotonic() + 30
    pending = set(result["scores"]) | set(next(iter(result["scores"].values())))
    while pending and time.monotonic() < deadline:
        pending = {p for p in pending if not _stored(dirs[p], task, "result")}
        if pending:
            time.sleep(0.05)  # polling a file another process writes: no event to wait on
    assert not pending, f"no stored result at {pending}"
    return Session(task, result, leader_dir, dirs)


def _stored(data_dir: Path, task: str, kind: str) -> bool:
    try:
        db = sqlite3.connect(f"file:{data_dir / STORE}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        row = db.execute(
            "SELECT 1 FROM envelopes WHERE task = ? AND kind = ? LIMIT 1", (task, kind)
        ).fetchone()
        return row is not None
    except sqlite3.Error:
        return False
    finally:
        db.close()


def copy_of(src: Path, dst: Path) -> Path:
    """A consistent copy of a (possibly live) node's store, with its key."""
    dst.mkdir(parents=True)
    source = sqlite3.connect(f"file:{src / STORE}?mode=ro", uri=True)
    target = sqlite3.connect(dst / STORE)
    source.backup(target)
    source.close()
    target.close()
    shutil.copy(src / KEY_FILE, dst / KEY_FILE)
    return dst


def edit(data_dir: Path, *sql: tuple[str, tuple[Any, ...]]) -> None:
    db = sqlite3.connect(data_dir / STORE)
    for statement, params in sql:
        assert db.execute(statement, params).rowcount > 0, statement
    db.commit()
    db.close()


def audit(session: Session, data_dir: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    proc = rnet("audit", session.task, "--data-dir", str(data_dir), "--json", *extra, cwd=data_dir)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    report = lines[0] if lines else {"stderr": proc.stderr}
    print(f"audit of {data_dir.name}: exit {proc.returncode}: {report.get('problems')}")
    return proc.returncode, report


def roles(session: Session) -> tuple[list[str], list[str]]:
    scores = session.result["scores"]
    return list(scores), list(next(iter(scores.values())))


# --- honest ---------------------------------------------------------------------------------------
def test_an_honest_session_verifies_from_every_store(session: Session, tmp_path: Path) -> None:
    executors, verifiers = roles(session)
    for name, src in (
        ("leader", session.leader_dir),
        ("verifier", session.dirs[verifiers[0]]),
        ("executor", session.dirs[executors[0]]),
    ):
        code, report = audit(session, copy_of(src, tmp_path / name))
        assert code == 0, (name, report.get("problems"), report.get("notes"))
        assert report["ok"] and report["winner"] == session.result["winner"], name
        assert set(report["executors"]) == set(executors), name
        assert report["requested"] == 4 and report["joined"] >= 4, name


def test_an_unknown_task_is_not_found(session: Session, tmp_path: Path) -> None:
    proc = rnet("audit", "task-nothing", "--data-dir", str(session.leader_dir), cwd=tmp_path)
    assert proc.returncode == 2 and "holds session task-nothing" in proc.stderr


# --- tampering (issue 15's list) --------------------------------------------------------------------
def test_role_edited_and_a_score_row_deleted(session: Session, tmp_path: Path) -> None:
    d = copy_of(session.leader_dir, tmp_path / "leader")
    edit(
        d,
        ("UPDATE sessions SET role = 'verifier' WHERE task = ?", (session.task,)),
        ("DELETE FROM envelopes WHERE id = (SELECT MIN(id) FROM envelopes WHERE task = ? "
         "AND kind IN ('score', 'scores'))", (session.task,)),
    )  # fmt: skip
    code, report = audit(session, d)
    assert code == 1 and not report["ok"]
    assert any("sessions.role says verifier" in p for p in report["problems"]), report
    # ... and with the reveal gone as well, the deleted batch is missing
    edit(d, ("DELETE FROM envelopes WHERE task = ? AND kind = 'reveal'", (session.task,)))
    code, report = audit(session, d)
    assert code == 1
    assert any("counted by the result is missing" in p for p in report["problems"]), report


def test_result_envelope_deleted(session: Session, tmp_path: Path) -> None:
    d = copy_of(session.leader_dir, tmp_path / "leader")
    edit(d, ("DELETE FROM envelopes WHERE task = ? AND kind = 'result'", (session.task,)))
    code, report = audit(session, d)
    assert code == 1
    assert any("no signed result" in p for p in report["problems"]), report


def test_every_envelope_but_the_advert_deleted(session: Session, tmp_path: Path) -> None:
    d = copy_of(session.leader_dir, tmp_path / "leader")
    edit(d, ("DELETE FROM envelopes WHERE task = ? AND kind != 'advertise'", (session.task,)))
    code, report = audit(session, d)
    assert code == 1
    assert any("no signed result" in p for p in report["problems"]), report


def test_results_table_winner_and_score_edited(session: Session, tmp_path: Path) -> None:
    executors, _ = roles(session)
    loser = next(e for e in executors if e != session.result["winner"])
    d = copy_of(session.leader_dir, tmp_path / "leader")
    edit(d, ("UPDATE results SET winner = ?, score = 0.99 WHERE task = ?", (loser, session.task)))
    code, report = audit(session, d)
    assert code == 1
    assert any("the results table says winner" in p for p in report["problems"]), report
    # `rnet sessions` shows the winner derived from signed data, not the edited cache
    proc = rnet("sessions", "--data-dir", str(d), "--json", cwd=tmp_path)
    (row,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert row["winner"] == session.result["winner"] and row["score"] != 0.99
    assert row["proof"] == "verified"


def test_a_forged_result_signed_by_the_leader_leaving_out_a_score(
    session: Session, tmp_path: Path
) -> None:
    """The leader's own key signs a result that drops one verifier's batch and is otherwise
    consistent (recomputed, that verifier listed missing): the batch is still signed and stored."""
    d = copy_of(session.leader_dir, tmp_path / "leader")
    db = sqlite3.connect(d / STORE)
    (raw,) = db.execute(
        "SELECT raw FROM envelopes WHERE task = ? AND kind = 'result'", (session.task,)
    ).fetchone()
    batches = [
        open_envelope(r)
        for (r,) in db.execute(
            "SELECT raw FROM envelopes WHERE task = ? AND kind IN ('score', 'scores')",
            (session.task,),
        )
    ]
    db.close()
    result = open_envelope(raw).body
    assert isinstance(result, Result) and result.commits is not None
    victim_batch = next(b for b in batches if b.digest in result.commits.batches)
    victim = victim_batch.sender
    scores = {
        e: {v: (None if v == victim else x) for v, x in row.items()}
        for e, row in result.scores.items()
    }
    t = tally(
        result.executors, result.verifiers,
        {e: {v: x for v, x in row.items() if x is not None} for e, row in scores.items()},
        aggregator=result.aggregator, weights=result.weights or None, params=result.params or None,
    )  # fmt: skip
    forged = dataclasses.replace(
        result,
        scores=scores,
        counts=t.counts,
        averages=t.averages,
        winner=t.winner,
        score=t.winner_score,
        missing=t.missing,
        canaries={c: {**row, victim: None} for c, row in result.canaries.items()},
        commits=dataclasses.replace(
            result.commits,
            batches=tuple(b for b in result.commits.batches if b != victim_batch.digest),
        ),
    )
    if forged.winner != result.winner:  # the text follows the winner
        forged = dataclasses.replace(forged, text="")
    leader = NaclSigner(parse_seed((d / KEY_FILE).read_text()))
    env = seal(forged, task=session.task, signer=leader, seq=2**62, ts_ms=0)
    edit(
        d,
        ("UPDATE envelopes SET raw = ?, seq = ? WHERE task = ? AND kind = 'result'",
         (env.raw, env.seq, session.task)),
    )  # fmt: skip
    code, report = audit(session, d)
    assert code == 1
    assert any("is not counted by the result" in p for p in report["problems"]), report


# --- portable proof ---------------------------------------------------------------------------------
def test_a_bundle_verifies_anywhere_and_a_broken_one_fails(
    session: Session, tmp_path: Path
) -> None:
    _, verifiers = roles(session)
    d = copy_of(session.dirs[verifiers[0]], tmp_path / "verifier")
    bundle = tmp_path / "proof.bundle"
    code, _ = audit(session, d, "--export", str(bundle))
    assert code == 0 and bundle.stat().st_size > 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ok = rnet("audit", "--bundle", str(bundle), cwd=elsewhere)
    assert ok.returncode == 0 and "audit OK" in ok.stdout, ok.stdout + ok.stderr
    broken = tmp_path / "broken.bundle"
    data = bundle.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    assert rnet("audit", "--bundle", str(broken), cwd=elsewhere).returncode == 1
    assert rnet("audit", "--bundle", str(tmp_path / "none"), cwd=elsewhere).returncode == 2
