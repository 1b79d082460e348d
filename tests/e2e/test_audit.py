"""Audit logic on hand-built transcripts (no network): what passes, and every way it must fail.

A transcript is built the way a leader's store gets it: really sealed envelopes, stored raw.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.audit import audit_task
from node.store import Store
from protocol.envelope import seal
from protocol.identity import NaclSigner, peer_id_to_str
from protocol.messages import Advertise, Assign, Join, Response, Result, Score, ScoreEntry, Scores
from protocol.tally import split_roles, tally

TASK = "audit-1"
LEADER = NaclSigner(bytes([1]) * 32)
E1, E2 = NaclSigner(bytes([2]) * 32), NaclSigner(bytes([3]) * 32)
V1, V2 = NaclSigner(bytes([4]) * 32), NaclSigner(bytes([5]) * 32)
ROGUE = NaclSigner(bytes([6]) * 32)


class Transcript:
    def __init__(self, tmp_path: Path, role: str = "leader") -> None:
        self.store = Store.in_data_dir(tmp_path)
        self.store.upsert_session(
            TASK,
            leader=peer_id_to_str(LEADER.peer_id),
            role=role,
            prompt="q",
            stage="done",
            at_ms=1,
        )
        self.seq = 0

    def add(self, signer: NaclSigner, body: object, *, task: str = TASK) -> None:
        self.seq += 1
        env = seal(body, task=task, signer=signer, seq=self.seq, ts_ms=1000 + self.seq)
        self.store.record_envelope(
            task=task,
            kind=env.kind,
            sender=peer_id_to_str(env.sender),
            seq=env.seq,
            ts_ms=env.ts_ms,
            raw=env.raw,
            direction="sent" if signer is LEADER else "accepted",
            at_ms=env.ts_ms,
        )

    def audit(self):
        return audit_task(self.store, TASK)


def honest_session(
    t: Transcript, *, scores: dict | None = None, result: Result | None = None
) -> Result:
    scores = scores or {
        E1.peer_id: {V1.peer_id: 0.8, V2.peer_id: 0.6},
        E2.peer_id: {V1.peer_id: 0.5, V2.peer_id: 0.4},
    }
    t.add(LEADER, Advertise(prompt="q", wanted=4))
    for s in (E1, E2, V1, V2):
        t.add(s, Join("m", "sim"))
    executors, verifiers = (E1.peer_id, E2.peer_id), (V1.peer_id, V2.peer_id)
    t.add(LEADER, Assign(executors, verifiers, "q"))
    t.add(E1, Response("answer one", "m"))
    t.add(E2, Response("answer two", "m"))
    t.add(V1, Scores(tuple(ScoreEntry(e, scores[e][V1.peer_id]) for e in executors), "m"))
    for e in executors:
        t.add(V2, Score(e, scores[e][V2.peer_id], "", "m"))
    if result is None:
        tl = tally(executors, verifiers, scores, aggregator="mean")
        result = tl.to_result("answer one" if tl.winner == E1.peer_id else "answer two")
    t.add(LEADER, result)
    return result


def test_an_honest_transcript_passes(tmp_path: Path) -> None:
    t = Transcript(tmp_path)
    honest_session(t)
    report = t.audit()
    assert report.ok, report.render()
    assert report.verified == report.envelopes == 12
    assert report.recomputed_winner == report.winner == peer_id_to_str(E1.peer_id)
    assert report.averages[peer_id_to_str(E1.peer_id)] == pytest.approx(0.7)
    assert "audit OK" in report.render()


def test_one_flipped_byte_fails(tmp_path: Path) -> None:
    t = Transcript(tmp_path)
    honest_session(t)
    db = t.store._db
    row_id, raw = db.execute("SELECT id, raw FROM envelopes WHERE kind = 'response'").fetchone()
    raw = bytearray(raw)
    raw[-10] ^= 0x40
    db.execute("UPDATE envelopes SET raw = ? WHERE id = ?", (bytes(raw), row_id))
    report = t.audit()
    assert not report.ok
    assert any("response" in p for p in report.problems), report.problems


def test_a_relabelled_row_fails(tmp_path: Path) -> None:
    t = Transcript(tmp_path)
    honest_session(t)
    t.store._db.execute("UPDATE envelopes SET sender = 'someone' WHERE kind = 'assign'")
    assert any("signed bytes say" in p for p in t.audit().problems)


def test_a_result_that_misstates_the_tally_fails(tmp_path: Path) -> None:
    t = Transcript(tmp_path)
    scores = {
        E1.peer_id: {V1.peer_id: 0.8, V2.peer_id: 0.6},
        E2.peer_id: {V1.peer_id: 0.5, V2.peer_id: 0.4},
    }
    # The leader names E2 the winner although E1 scored higher: consistent numbers, wrong winner.
    lie = Result(
        winner=E2.peer_id,
        score=0.45,
        text="answer two",
        aggregator="mean",
        averages={E1.peer_id: 0.7, E2.peer_id: 0.45},
        counts={E1.peer_id: 2, E2.peer_id: 2},
        scores=scores,
        missing=(),
    )
    honest_session(t, scores=scores, result=lie)
    problems = t.audit().problems
    assert any(p.startswith("winner") for p in problems), problems


def test_a_score_left_out_of_the_result_fails_on_the_leader(tmp_path: Path) -> None:
    t = Transcript(tmp_path)
    scores = {
        E1.peer_id: {V1.peer_id: 0.8, V2.peer_id: 0.6},
        E2.peer_id: {V1.peer_id: 0.5, V2.peer_id: 0.4},
    }
    partial = {E1.peer_id: {V1.peer_id: 0.8}, E2.peer_id: dict(scores[E2.peer_id])}
    tl = tally((E1.peer_id, E2.peer_id), (V1.peer_id, V2.peer_id), partial)
    honest_session(t, scores=scores, result=tl.to_result("answer one"))
    problems = t.audit().problems
    assert any("left out of the result" in p for p in problems), problems


def test_accepted_forgeries_in_a_transcript_fail(tmp_path: Path) -> None:
    t = Transcript(tmp_path)
    honest_session(t)
    t.add(ROGUE, Score(E1.peer_id, 0.01, "", "m"))  # a non-verifier's score
    t.add(ROGUE, Result(None, None, "", "mean", {}, {}, {}, ()))  # a non-leader's result
    problems = " ".join(t.audit().problems)
    assert "not an assigned verifier" in problems
    assert "not the leader" in problems


def test_no_envelopes_is_a_failure(tmp_path: Path) -> None:
    t = Transcript(tmp_path)
    report = t.audit()
    assert not report.ok and "no envelopes" in report.render()


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    n=st.integers(2, 12),
    method=st.sampled_from(["balanced", "original"]),
)
def test_role_splits_never_let_a_node_judge_itself(seed: int, n: int, method: str) -> None:
    peers = [NaclSigner(bytes([i + 10]) * 32).peer_id for i in range(n)]
    executors, verifiers = split_roles(peers, random.Random(seed), method)
    assert executors and verifiers
    assert not set(executors) & set(verifiers)
    assert set(executors) | set(verifiers) == set(peers)
    if n == 2:
        assert len(executors) == len(verifiers) == 1
    # Whatever is reported, a self-score never reaches the tally.
    scores = {e: {v: 0.5 for v in [*verifiers, e]} for e in executors}
    tl = tally(executors, verifiers, scores)
    assert all(e not in row for e, row in tl.scores.items())
