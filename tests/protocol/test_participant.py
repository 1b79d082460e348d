"""Participant machine: one test per rule (join, release, execute blind, judge items)."""

from __future__ import annotations

import pytest

from protocol.messages import (
    Abort,
    Advertise,
    Assign,
    Item,
    Join,
    Response,
    Result,
    Reveal,
    Score,
    Scores,
)
from protocol.session import (
    AbortCause,
    Aborted,
    Finished,
    Generate,
    Judge,
    Notice,
    ParticipantSession,
    Publish,
    Released,
    Role,
    Stage,
    Subscribe,
    Unsubscribe,
)
from tests.protocol.helpers import TASK, Swarm
from tests.protocol.test_session import ADV, LEAD, P, env, published, rejected

D = b"\x11" * 32  # a response digest


def participant(me=P[0], **kw: object) -> tuple[ParticipantSession, list]:  # type: ignore[no-untyped-def]
    adv = env(LEAD, ADV)
    session = ParticipantSession.from_advertise(adv, me.peer_id, model="m", backend="sim", **kw)  # type: ignore[arg-type]
    return session, session.start(0)


def item(label: str, text: str, total: int = 2) -> Item:
    return Item(label, text, D, total)


def verifier(total_executors: int = 2, **kw: object) -> ParticipantSession:
    session, _ = participant(**kw)
    executors = tuple(p.peer_id for p in P[1 : 1 + total_executors])
    session.receive(env(LEAD, Assign(executors, (P[0].peer_id,), "p")), 100)
    assert session.role == Role.VERIFIER
    return session


def test_participant_joins_on_start_and_listens_for_items() -> None:
    session, effects = participant()
    assert effects[:2] == [Subscribe(TASK), Subscribe(TASK + "/judge")]
    assert published(effects, Join) == [Join("m", "sim")]
    # a join goes to the leader's topic only (the leader subscribed to it before advertising)
    assert [e.topic for e in effects if isinstance(e, Publish)] == [TASK + "/lead"]
    assert session.role == Role.PENDING and session.next_deadline() == 1_000 + 5_000
    _watcher, effects = participant(join=False)
    assert effects[0] == Subscribe(TASK) and not published(effects, Join)
    assert Subscribe(TASK + "/judge") not in effects


def test_participant_ignores_assign_result_abort_item_from_non_leader() -> None:
    session, _ = participant()
    me, other = P[0].peer_id, P[1].peer_id
    assert rejected(session.receive(env(P[1], Assign((me,), (other,), "p")), 10)) == ["not_leader"]
    assert rejected(session.receive(env(P[1], Abort("x")), 10)) == ["not_leader"]
    assert rejected(session.receive(env(P[1], item("A", "x")), 10)) == ["not_leader"]
    assert session.stage == Stage.ADVERTISE and session.role == Role.PENDING


def test_a_joiner_not_picked_is_released_at_once() -> None:
    session, _ = participant()
    effects = session.receive(env(LEAD, Assign((P[1].peer_id,), (P[2].peer_id,), "p")), 100)
    (released,) = [e for e in effects if isinstance(e, Released)]
    assert "not picked" in released.reason and session.finished
    assert Unsubscribe(TASK) in effects and Unsubscribe(TASK + "/judge") in effects
    assert not any(isinstance(e, Aborted) for e in effects)  # not an error
    watcher, _ = participant(join=False)  # a watcher holds no slot: it keeps watching
    watcher.receive(env(LEAD, Assign((P[1].peer_id,), (P[2].peer_id,), "p")), 100)
    assert watcher.role == Role.OBSERVER and not watcher.finished


def test_executor_generates_and_responds_to_the_leader_only() -> None:
    session, _ = participant()
    me, other = P[0].peer_id, P[1].peer_id
    effects = session.receive(env(LEAD, Assign((me,), (other,), "the prompt")), 100)
    assert session.role == Role.EXECUTOR
    assert Unsubscribe(TASK + "/judge") in effects  # blind: no other answer comes its way
    assert Generate(TASK, "the prompt", 2_100) in effects
    effects = session.generation_done("42", "m", 7, 500)
    assert published(effects, Response) == [Response("42", "m", 7)]
    assert [e.topic for e in effects if isinstance(e, Publish)] == [TASK + "/lead"]
    assert session.generation_done("43", "m", 7, 600) == []  # never twice
    # an item that beat the unsubscription is dropped, never judged
    assert session.receive(env(LEAD, item("A", "someone else's")), 700) == []


def test_executor_too_late_does_not_respond() -> None:
    session, _ = participant()
    session.receive(env(LEAD, Assign((P[0].peer_id,), (P[1].peer_id,), "p")), 100)
    effects = session.generation_done("42", "m", 7, 2_100)
    assert not published(effects, Response)
    assert any(isinstance(e, Notice) for e in effects)


def test_verifier_judges_each_item_as_it_arrives() -> None:
    session = verifier()
    effects = session.receive(env(LEAD, item("B", "one")), 200)
    assert effects == [Judge(TASK, "p", "B", "one", 5_100)]
    assert rejected(session.receive(env(LEAD, item("B", "again")), 210)) == ["duplicate"]
    assert rejected(session.receive(env(LEAD, item("C", "x", total=3)), 210)) == ["inconsistent"]
    effects = session.receive(env(LEAD, item("A", "two")), 300)
    assert [e.label for e in effects if isinstance(e, Judge)] == ["A"]
    assert session.stage == Stage.VERIFY  # every item in
    # judgements complete out of order, each published at once, to the leader only
    done = session.judgement_done("A", 0.3, "meh", "j", 400)
    assert [e.topic for e in done if isinstance(e, Publish)] == [TASK + "/lead"]
    assert published(done, Score) == [Score("A", 0.3, "meh", "j")]
    assert published(session.judgement_done("B", 0.9, "good", "j", 500), Score) == [
        Score("B", 0.9, "good", "j")
    ]
    assert session.judgement_done("B", 0.1, "again", "j", 600) == []  # once per label
    assert session.stage == Stage.FINALIZE  # everything expected is in: waiting for the result


def test_responses_and_scores_seen_without_the_hub_are_ignored() -> None:
    session = verifier()
    assert session.receive(env(P[1], Response("r", "m")), 150) == []
    assert session.receive(env(P[2], Score("A", 0.9, "", "j")), 150) == []
    assert session.receive(env(P[3], Join("m", "sim")), 150) == []


def test_verifier_batch_mode_sends_one_scores_message() -> None:
    session = verifier(batch_scores=True)
    session.receive(env(LEAD, item("A", "one")), 200)
    assert not published(session.judgement_done("A", 0.5, "", "j", 250), Scores)  # B still due
    session.receive(env(LEAD, item("B", "two")), 300)
    (batch,) = published(session.judgement_done("B", 0.6, "", "j", 350), Scores)
    assert [(e.label, e.score) for e in batch.entries] == [("A", 0.5), ("B", 0.6)]


def test_participant_holds_items_that_overtake_the_assignment() -> None:
    session, _ = participant()
    assert session.receive(env(LEAD, item("A", "early", 1)), 50) == []
    effects = session.receive(env(LEAD, Assign((P[1].peer_id,), (P[0].peer_id,), "p")), 100)
    assert Judge(TASK, "p", "A", "early", 5_100) in effects


def test_participant_gives_up_without_assignment_or_result() -> None:
    session, _ = participant(grace_ms=500)
    effects = session.tick(1_500)
    assert session.stage == Stage.ABORTED and any(isinstance(e, Aborted) for e in effects)
    assert any(isinstance(e, Released) for e in effects)
    session, _ = participant(grace_ms=500)
    session.receive(env(LEAD, Assign((P[1].peer_id,), (P[0].peer_id,), "p")), 100)
    assert session.next_deadline() == 2_100
    session.tick(5_100)
    assert session.stage == Stage.FINALIZE and session.next_deadline() == 5_600
    session.tick(5_600)
    assert session.stage == Stage.ABORTED and "no result" in (session.abort_reason or "")


def test_participant_accepts_reveal_result_and_abort_from_leader_only() -> None:
    session = verifier(total_executors=1)
    me, e1 = P[0].peer_id, P[1].peer_id
    assert session.receive(env(LEAD, Reveal(0, 1, ())), 150) == []
    assert rejected(session.receive(env(P[2], Reveal(0, 1, ())), 150)) == ["not_leader"]
    wrong_roles = Result(None, None, "", "mean", {me: None}, {me: 0}, {me: {e1: None}})
    assert rejected(session.receive(env(LEAD, wrong_roles), 200)) == ["result_mismatch"]
    good = Result(e1, 0.5, "t", "mean", {e1: 0.5}, {e1: 1}, {e1: {me: 0.5}})
    assert rejected(session.receive(env(P[2], good), 200)) == ["not_leader"]
    effects = session.receive(env(LEAD, good), 200)
    assert Finished(TASK, good) in effects and session.stage == Stage.DONE
    assert any(isinstance(e, Released) for e in effects)
    assert Unsubscribe(TASK + "/judge") in effects
    assert rejected(session.receive(env(LEAD, item("A", "late", 1)), 300)) == ["late"]


def test_abort_releases_the_slot() -> None:
    session = verifier()
    effects = session.receive(env(LEAD, Abort("operator")), 200)
    assert Aborted(TASK, "operator", AbortCause.LEADER) in effects
    assert any(isinstance(e, Released) for e in effects)


def test_generate_carries_advertised_params() -> None:
    adv = Advertise(prompt="p", params={"temperature": 0.2})
    session = ParticipantSession(TASK, P[0].peer_id, LEAD.peer_id, adv, model="m", backend="sim")
    session.start(0)
    effects = session.receive(env(LEAD, Assign((P[0].peer_id,), (P[1].peer_id,), "p")), 1)
    (gen,) = [e for e in effects if isinstance(e, Generate)]
    assert gen.params == {"temperature": 0.2}


@pytest.mark.parametrize(("given", "sent"), [(1.0, 0.99), (-0.5, 0.0), (0.42, 0.42)])
def test_judge_score_clamped_to_range(given: float, sent: float) -> None:
    session = verifier(total_executors=1)
    session.receive(env(LEAD, item("A", "r", 1)), 200)
    (sc,) = published(session.judgement_done("A", given, "r", "j", 300), Score)
    assert sc.score == sent


def test_judge_nan_is_a_failed_judgement_and_the_leader_is_told() -> None:
    session = verifier(total_executors=1)
    session.receive(env(LEAD, item("A", "r", 1)), 200)
    effects = session.judgement_done("A", float("nan"), "r", "j", 300)
    assert not published(effects, Score) and any(isinstance(e, Notice) for e in effects)
    assert [b.failed for b in published(effects, Scores)] == [("A",)]


def test_a_failed_judgement_is_reported_once_alone_or_in_the_batch() -> None:
    single = verifier()
    single.receive(env(LEAD, item("A", "one")), 200)
    effects = single.judgement_failed("A", "timeout", 250)
    assert [(b.entries, b.failed) for b in published(effects, Scores)] == [((), ("A",))]
    assert [e.topic for e in effects if isinstance(e, Publish)] == [TASK + "/lead"]

    batch = verifier(batch_scores=True)
    batch.receive(env(LEAD, item("A", "one")), 200)
    assert not published(batch.judgement_failed("A", "timeout", 250), Scores)  # B still due
    batch.receive(env(LEAD, item("B", "two")), 300)
    (sent,) = published(batch.judgement_done("B", 0.6, "", "j", 350), Scores)
    assert [(e.label, e.score) for e in sent.entries] == [("B", 0.6)] and sent.failed == ("A",)


# --- whole sessions --------------------------------------------------------------------------------
def test_swarm_happy_path_every_node_agrees() -> None:
    s = Swarm(providers=6, auto_assign_at=6, advertise=ADV)
    s.settle()
    assert s.now == 0 and s.leader.stage == Stage.DONE
    for p in s.participants.values():
        assert p.stage == Stage.DONE and p.result == s.leader.result
    assert all(not s.rejected(n) for n in s.signers)
    roles = sorted(p.role for p in s.participants.values())
    assert roles == [Role.EXECUTOR] * 3 + [Role.VERIFIER] * 3


def test_no_executor_is_sent_another_answer() -> None:
    s = Swarm(providers=6, auto_assign_at=6, advertise=ADV, canary_rate=1.0)
    s.settle()
    assert s.leader.stage == Stage.DONE
    for ex in s.leader.executors:
        kinds = {open_kind for open_kind in _received_kinds(s, ex)}
        assert not kinds & {"response", "item"}, kinds


def _received_kinds(s: Swarm, node: bytes) -> set[str]:
    from protocol.envelope import open_envelope

    return {open_envelope(raw).kind for raw in s.stored[node] if open_envelope(raw).sender != node}


def test_pipe_n_with_more_joiners_releases_the_rest() -> None:
    s = Swarm(providers=6, auto_assign_at=4, advertise=ADV)
    s.run_to_end()
    assert len(s.leader.executors) + len(s.leader.verifiers) == 4
    released = [n for n in s.provider_ids if any(isinstance(e, Released) for e in s.effects[n])]
    assert len(released) == 6  # everyone frees its slot: two at the assignment, four at the end
    assert s.leader.result is not None and (s.leader.result.requested, s.leader.result.joined) == (
        4,
        4,
    )


def test_failed_judgement_is_missing_not_zero() -> None:
    s = Swarm(providers=3, auto_assign_at=3, advertise=ADV, seed=1)
    while s.queue or s.work:
        if (
            s.work
            and isinstance(s.work[0].effect, Judge)
            and s.work[0].node == s.leader.verifiers[0]
        ):
            s.step_work(0, fail=True)
        elif s.queue:
            s.step_delivery()
        else:
            s.step_work()
    s.run_to_end()
    result = s.leader.result
    assert result is not None
    failed = s.leader.verifiers[0]
    assert all(row[failed] is None for row in result.scores.values())
    assert failed in result.missing


def test_failed_generation_makes_the_executor_missing() -> None:
    s = Swarm(providers=4, auto_assign_at=4, advertise=ADV, seed=3)
    while s.queue:  # joins and the assignment, no local work yet
        s.step_delivery()
    gen = [i for i, w in enumerate(s.work) if isinstance(w.effect, Generate)]
    s.step_work(gen[0], fail=True)
    s.run_to_end()
    result = s.leader.result
    assert result is not None and len(result.missing) == 1
    assert result.missing[0] in s.leader.executors and result.winner != result.missing[0]


def test_snapshot_to_dict_is_json_with_base58_ids() -> None:
    import json

    from protocol.identity import peer_id_to_str

    s = Swarm(providers=2, auto_assign_at=2, advertise=ADV)
    s.settle()
    d = s.leader.snapshot().to_dict()
    json.dumps(d)
    assert d["stage"] == "done" and d["role"] == "leader" and d["requested"] == 2
    assert d["leader"] == peer_id_to_str(LEAD.peer_id)
    (ex,) = d["executors"]
    (ver,) = d["verifiers"]
    assert d["winner"] == ex and set(d["scores"][ex]) == {ver}
    assert d["responses"][ex].startswith("answer of")
    # The typed form the node's events are cut from names every field, and only those.
    from protocol.effects import SnapshotDict

    assert set(d) == set(SnapshotDict.__annotations__)
