"""The audit from signed envelopes alone: honest sessions pass from every participant's store;
every missing, altered or extra envelope fails with a message naming it."""

from __future__ import annotations

import dataclasses

import pytest

from protocol.envelope import Envelope, open_envelope, seal
from protocol.messages import Advertise, Item, Result, Reveal, Score
from protocol.session import Stage
from protocol.transcript import verify_transcript
from tests.protocol.helpers import TASK, Swarm

ADV = Advertise(prompt="What is 2+2?", join_ms=1_000, exec_ms=2_000, verify_ms=3_000)


def honest(ex: bytes, ver: bytes) -> float:
    return (ex[-1] % 90) / 100


@pytest.fixture(scope="module")
def session() -> Swarm:
    s = Swarm(
        providers=6, auto_assign_at=6, advertise=ADV, canary_rate=0.5, seed=7, score_of=honest
    )
    s.participant_kw = {"batch_scores": True}
    s.run_to_end()
    assert s.leader.stage == Stage.DONE and s.leader.canary_of  # a canary went out
    return s


def opened(raws: list[bytes]) -> list[Envelope]:
    return [open_envelope(r) for r in raws]


def without(raws: list[bytes], kind: str) -> list[bytes]:
    return [r for r in raws if open_envelope(r).kind != kind]


def resign(s: Swarm, body: object, kind: str = "result") -> bytes:
    """The leader (its real key) signs ``body``: a forgery only the leader could make."""
    return seal(body, task=TASK, signer=s.signers[s.leader_id], seq=10**9, ts_ms=0).raw  # type: ignore[arg-type]


def test_honest_session_verifies_from_every_store(session: Swarm) -> None:
    s = session
    result = s.leader.result
    assert result is not None
    for node in [s.leader_id, *s.leader.executors, *s.leader.verifiers]:
        report = verify_transcript(s.stored[node])
        assert report.ok, (node, report.problems)
        assert report.winner == result.winner and report.winner_text == result.text
        assert set(report.executors) == set(s.leader.executors)
        assert set(report.verifiers) == set(s.leader.verifiers)
        assert report.labels == s.leader.labels
        assert set(report.canaries) == set(s.leader.canary_of)
        for ex in s.leader.executors:
            for ver in s.leader.verifiers:
                assert report.scores[ex][ver] == honest(ex, ver)
    assert "audit OK" in verify_transcript(s.stored[s.leader_id]).render()


def test_an_executors_store_gets_what_it_needs_through_the_reveal(session: Swarm) -> None:
    ex = session.leader.executors[0]
    kinds = [e.kind for e in opened(session.stored[ex]) if e.sender != ex]
    assert "scores" not in kinds and "reveal" in kinds  # the batches come inside the reveal


def test_result_removed_fails(session: Swarm) -> None:
    report = verify_transcript(without(session.stored[session.leader_id], "result"))
    assert not report.ok and "no signed result" in report.problems[0]


def test_only_the_advert_left_fails(session: Swarm) -> None:
    advert = [r for r in session.stored[session.leader_id] if open_envelope(r).kind == "advertise"]
    report = verify_transcript(advert)
    assert not report.ok and any("no signed result" in p for p in report.problems)


def test_a_committed_score_batch_removed_fails(session: Swarm) -> None:
    raws = [r for r in session.stored[session.leader_id] if open_envelope(r).kind != "reveal"]
    batch = next(r for r in raws if open_envelope(r).kind == "scores")
    report = verify_transcript([r for r in raws if r != batch])
    assert not report.ok
    assert any("counted by the result is missing" in p for p in report.problems)


def test_a_forged_result_leaving_out_a_score_fails(session: Swarm) -> None:
    """The leader's own key signs a result that drops one verifier's batch and recomputes
    everything else consistently (that verifier listed as missing): the batch is still signed,
    in the stores, and not counted."""
    s = session
    result = s.leader.result
    assert result is not None and result.commits is not None
    dropped = s.leader.batches[0]
    victim = dropped.sender
    commits = dataclasses.replace(
        result.commits, batches=tuple(d for d in result.commits.batches if d != dropped.digest)
    )
    scores = {
        e: {v: (None if v == victim else x) for v, x in row.items()}
        for e, row in result.scores.items()
    }
    forged = dataclasses.replace(
        result,
        scores=scores,
        counts={e: sum(x is not None for x in row.values()) for e, row in scores.items()},
        canaries={
            c: {v: (None if v == victim else x) for v, x in row.items()}
            for c, row in result.canaries.items()
        },
        missing=(*result.missing, victim),
        commits=commits,
    )
    # recompute the averages so the forged result is internally consistent
    from protocol.tally import tally

    t = tally(
        s.leader.executors, s.leader.verifiers,
        {e: {v: x for v, x in row.items() if x is not None} for e, row in scores.items()},
        aggregator=result.aggregator, weights=result.weights, params=result.params,
    )  # fmt: skip
    text = s.leader.responses[t.winner].body.text if t.winner else ""  # type: ignore[union-attr]
    forged = dataclasses.replace(
        forged, averages=t.averages, winner=t.winner, score=t.winner_score, text=text
    )
    for node in (s.leader_id, victim):
        raws = [r for r in s.stored[node] if open_envelope(r).kind != "result"]
        raws.append(resign(s, forged))
        report = verify_transcript(raws)
        assert not report.ok
        assert any("not counted by the result" in p for p in report.problems), report.problems


def test_a_result_claiming_a_different_score_fails(session: Swarm) -> None:
    s = session
    result = s.leader.result
    assert result is not None
    ex, ver = s.leader.executors[0], s.leader.verifiers[0]
    scores = {e: dict(row) for e, row in result.scores.items()}
    scores[ex][ver] = 0.01
    forged = dataclasses.replace(result, scores=scores)
    raws = [r for r in s.stored[s.leader_id] if open_envelope(r).kind != "result"]
    report = verify_transcript([*raws, resign(s, forged)])
    assert not report.ok
    assert any("the signed batches say" in p for p in report.problems)


def test_a_second_result_fails(session: Swarm) -> None:
    s = session
    result = s.leader.result
    assert result is not None
    other = dataclasses.replace(result, joined=result.joined + 1)
    report = verify_transcript([*s.stored[s.leader_id], resign(s, other)])
    assert any("2 different results" in p for p in report.problems)


def test_an_altered_item_fails_from_the_verifiers_store(session: Swarm) -> None:
    """A leader that forwarded a text other than the executor's: the verifier holds the proof."""
    s = session
    ver = s.leader.verifiers[0]
    raws = s.stored[ver]
    item_env = next(
        e for e in opened(raws) if e.kind == "item" and e.body.label in s.leader.labels.values()
    )  # type: ignore[union-attr]
    body = item_env.body
    assert isinstance(body, Item)
    altered = resign(s, dataclasses.replace(body, text=body.text + " (edited)"))
    report = verify_transcript([r for r in raws if r != item_env.raw] + [altered])
    assert not report.ok
    assert any(f"item {body.label} as received here" in p for p in report.problems)


def test_an_uncounted_score_is_extra(session: Swarm) -> None:
    s = session
    ver = s.leader.verifiers[0]
    extra = seal(Score("A", 0.9), task=TASK, signer=s.signers[ver], seq=10**9, ts_ms=0).raw
    report = verify_transcript([*s.stored[s.leader_id], extra])
    assert any("is not counted by the result" in p for p in report.problems)


def test_a_reveal_smuggling_an_envelope_fails(session: Swarm) -> None:
    s = session
    stranger_resp = s.stored[s.leader_id][0]  # the advertisement: not something a reveal carries
    report = verify_transcript([*s.stored[s.leader_id], resign(s, Reveal(0, 1, (stranger_resp,)))])
    assert any("the reveal carries a advertise" in p for p in report.problems)


def test_garbage_and_other_tasks_are_named() -> None:
    report = verify_transcript([b"\x00garbage"])
    assert not report.ok and report.problems[0].startswith("envelope #0")
    assert not verify_transcript([]).ok


def test_an_aborted_session_verifies_with_nothing_to_recompute() -> None:
    s = Swarm(providers=1, auto_assign_at=2, advertise=ADV, leader_kw={"reannounce": 0})
    s.run_to_end()
    report = verify_transcript(s.stored[s.leader_id])
    assert s.leader.stage == Stage.ABORTED
    assert report.ok and report.aborted and "not enough participants" in report.aborted


def test_a_result_without_commitments_is_refused() -> None:
    s = Swarm(providers=2, auto_assign_at=2, advertise=ADV)
    s.run_to_end()
    result = s.leader.result
    assert isinstance(result, Result)
    bare = dataclasses.replace(result, commits=None)
    raws = [r for r in s.stored[s.leader_id] if open_envelope(r).kind != "result"]
    report = verify_transcript([*raws, resign(s, bare)])
    assert any("commits to no envelope" in p for p in report.problems)


def test_a_bundle_round_trips_and_verifies_alone(session: Swarm) -> None:
    from protocol.proof import export_bundle, read_bundle

    data = export_bundle(TASK, session.stored[session.leader.verifiers[0]])
    task, raws = read_bundle(data)
    assert task == TASK and verify_transcript(raws, task).ok


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00", b"\x81\xa6format\xa3bad", b"\x83\xa6format\xa1x\xa4task\xa1t\xa9envelopes\x90"],
)
def test_anything_else_is_not_a_bundle(data: bytes) -> None:
    from protocol.errors import ProtocolError
    from protocol.proof import read_bundle

    with pytest.raises(ProtocolError):
        read_bundle(data)


def test_an_answer_dropped_for_its_format_is_a_note_and_counting_one_fails() -> None:
    """Issue 17 in the audit: the leader drops an answer that breaks the requested format (a
    note, the session is sound); a result that counts such an answer is a problem."""
    adv = dataclasses.replace(ADV, format="json")
    answers = iter(['{"sum": 4}', *["four"] * 8])  # the first answer fits, the others do not
    s = Swarm(
        providers=4, auto_assign_at=4, advertise=adv, seed=3, answer_of=lambda n: next(answers)
    )
    s.run_to_end()
    result = s.leader.result
    assert s.leader.stage == Stage.DONE and result is not None and s.leader.invalid
    dropped = next(iter(s.leader.invalid))
    for node in (s.leader_id, dropped):  # the leader never stored it; its author did
        report = verify_transcript(s.stored[node])
        assert report.ok, report.problems
    assert any("dropped" in n and "not valid JSON" in n for n in report.notes), report.notes
    # a leader that counts the broken answer (its signed response digest in the commitments)
    (env,) = [e for e in opened(s.stored[dropped]) if e.kind == "response"]
    assert result.commits is not None
    c = result.commits
    commits = dataclasses.replace(
        c,
        responses={**c.responses, dropped: env.digest},
        items={**c.items, s.leader.labels[dropped]: bytes(32)},
    )
    forged = dataclasses.replace(result, commits=commits)
    raws = [r for r in s.stored[dropped] if open_envelope(r).kind != "result"]
    report = verify_transcript([*raws, resign(s, forged)])
    assert any("was counted: not valid JSON" in p for p in report.problems), report.problems
