"""Session machines: one test per rule. Leaders are driven by hand with real sealed envelopes;
whole sessions run through the in-memory :class:`~tests.protocol.helpers.Swarm`."""

from __future__ import annotations

import random

import pytest

from protocol.effects import SnapshotDict
from protocol.envelope import Envelope, open_envelope, seal
from protocol.errors import StateError
from protocol.identity import NaclSigner
from protocol.messages import (
    MESH_TOPIC,
    Abort,
    Advertise,
    Assign,
    Body,
    Join,
    Response,
    Result,
    Score,
    ScoreEntry,
    Scores,
)
from protocol.session import (
    LEADER_TRANSITIONS,
    PARTICIPANT_TRANSITIONS,
    AbortCause,
    Aborted,
    Finished,
    Generate,
    Judge,
    LeaderSession,
    Notice,
    ParticipantSession,
    Publish,
    Rejected,
    Role,
    Stage,
    StageChanged,
    Subscribe,
    Unsubscribe,
)
from protocol.tally import split_roles
from tests.protocol.helpers import TASK, Swarm
from tests.protocol.strategies import SIGNERS

ADV = Advertise(prompt="What is 2+2?", join_ms=1_000, exec_ms=2_000, verify_ms=3_000)
LEAD = SIGNERS[0]
P = SIGNERS[1:7]  # providers
STRANGER = NaclSigner(b"\xee" * 32)
_seq = [0]


def env(signer: NaclSigner, body: Body, task: str = TASK) -> Envelope:
    _seq[0] += 1
    t = "" if body.KIND in ("presence", "bootmesh") else task
    return open_envelope(seal(body, task=t, signer=signer, seq=_seq[0], ts_ms=0).raw)


def published(effects: list, kind: type) -> list:
    return [e.body for e in effects if isinstance(e, Publish) and isinstance(e.body, kind)]


def rejected(effects: list) -> list[str]:
    return [e.reason for e in effects if isinstance(e, Rejected)]


def leader_with(n: int, *, seed: int = 0, assign: bool = True, **kw: object) -> LeaderSession:
    """A started leader with ``n`` providers joined (and assigned unless ``assign=False``)."""
    leader = LeaderSession(TASK, LEAD.peer_id, ADV, rng=random.Random(seed), **kw)  # type: ignore[arg-type]
    leader.start(0)
    for p in P[:n]:
        assert leader.receive(env(p, Join("m", "sim")), 10) == []
    if assign:
        leader.ack(100)
    return leader


def signer_of(peer: bytes) -> NaclSigner:
    return next(s for s in SIGNERS if s.peer_id == peer)


# --- tables ---------------------------------------------------------------------------------------
def test_transition_tables_cover_every_stage_and_terminals_are_final() -> None:
    for table in (LEADER_TRANSITIONS, PARTICIPANT_TRANSITIONS):
        assert set(table) == set(Stage)
        assert table[Stage.DONE] == table[Stage.ABORTED] == {}
        for row in table.values():
            assert "abort" in row or not row


# --- leader: advertise and join -----------------------------------------------------------------
def test_leader_start_effects() -> None:
    leader = LeaderSession(TASK, LEAD.peer_id, ADV, rng=random.Random(0))
    assert leader.start(100) == [
        Subscribe(TASK),
        Subscribe(TASK + "/lead"),  # joins and scores come only to the leader
        Publish(MESH_TOPIC, TASK, ADV),
        StageChanged(TASK, Stage.ADVERTISE, 1_100),
    ]
    assert leader.next_deadline() == 1_100
    with pytest.raises(StateError):
        leader.start(100)


def test_inputs_before_start_refused() -> None:
    leader = LeaderSession(TASK, LEAD.peer_id, ADV, rng=random.Random(0))
    with pytest.raises(StateError):
        leader.tick(0)


def test_duplicate_and_late_joins_rejected() -> None:
    leader = leader_with(2, assign=False)
    assert rejected(leader.receive(env(P[0], Join("m", "sim")), 20)) == ["duplicate"]
    leader.ack(30)
    assert rejected(leader.receive(env(P[2], Join("m", "sim")), 40)) == ["late"]
    assert P[2].peer_id not in leader.joined


def test_ack_needs_two_and_only_once() -> None:
    leader = leader_with(1, assign=False)
    with pytest.raises(StateError, match="at least 2"):
        leader.ack(50)
    leader.receive(env(P[1], Join("m", "sim")), 60)
    effects = leader.ack(70)
    (assign,) = published(effects, Assign)
    assert len(assign.executors) == len(assign.verifiers) == 1
    assert assign.prompt == ADV.prompt
    assert StageChanged(TASK, Stage.EXECUTE, 2_070) in effects
    with pytest.raises(StateError, match="already assigned"):
        leader.ack(80)


def test_roles_split_by_seeded_rng_reproducibly() -> None:
    a = leader_with(5, seed=42, split="original")
    b = leader_with(5, seed=42, split="original")
    assert (a.executors, a.verifiers) == (b.executors, b.verifiers)
    joined = [p.peer_id for p in P[:5]]
    assert (a.executors, a.verifiers) == split_roles(joined, random.Random(42), "original")
    c = leader_with(5, seed=42)
    assert set(c.executors).isdisjoint(c.verifiers) and len(c.executors) == 2
    d = leader_with(5, seed=42, executors=1)  # one answer, four judges
    assert (len(d.executors), len(d.verifiers)) == (1, 4)
    with pytest.raises(ValueError):
        LeaderSession(TASK, LEAD.peer_id, ADV, rng=random.Random(0), executors=-1)


def test_pipe_mode_assigns_as_soon_as_n_joined() -> None:
    leader = leader_with(2, assign=False, auto_assign_at=3)
    assert leader.stage == Stage.ADVERTISE
    effects = leader.receive(env(P[2], Join("m", "sim")), 20)
    assert published(effects, Assign) and leader.stage == Stage.EXECUTE


def test_join_deadline_assigns_with_two_or_more() -> None:
    leader = leader_with(2, assign=False, auto_assign_at=5)
    assert leader.tick(999) == []
    effects = leader.tick(1_000)
    assert published(effects, Assign)
    assert leader.exec_deadline == 3_000


def test_join_deadline_aborts_with_fewer_than_two() -> None:
    leader = leader_with(1, assign=False, auto_assign_at=3)
    effects = leader.tick(1_000)
    (abort,) = published(effects, Abort)
    assert "1 joined" in abort.reason
    assert (
        Aborted(TASK, abort.reason, AbortCause.NOT_ENOUGH_PARTICIPANTS) in effects
        and Unsubscribe(TASK) in effects
    )
    assert leader.finished and leader.next_deadline() is None


# --- leader: responses -------------------------------------------------------------------------
def test_only_assigned_executors_respond_once_in_time() -> None:
    leader = leader_with(4)
    ex, ver = leader.executors, leader.verifiers
    resp = Response("4", "m")
    assert rejected(leader.receive(env(signer_of(ver[0]), resp), 200)) == ["not_executor"]
    assert rejected(leader.receive(env(STRANGER, resp), 200)) == ["not_executor"]
    assert leader.receive(env(signer_of(ex[0]), resp), 200) == []
    assert rejected(leader.receive(env(signer_of(ex[0]), Response("5", "m")), 210)) == ["duplicate"]
    assert leader.responses[ex[0]].text == "4"
    # the execute deadline (100 + 2000) passes: the second executor is late
    effects = leader.receive(env(signer_of(ex[1]), resp), 2_100)
    assert rejected(effects) == ["late"]
    assert leader.stage == Stage.VERIFY
    assert leader.snapshot().missing == (ex[1],)


def test_no_response_by_execute_deadline_aborts() -> None:
    leader = leader_with(2)
    effects = leader.tick(2_100)
    assert published(effects, Abort) and leader.stage == Stage.ABORTED
    assert "no executor responded" in (leader.abort_reason or "")


# --- leader: scores ----------------------------------------------------------------------------
def test_score_rules() -> None:
    leader = leader_with(5)  # 2 executors, 3 verifiers
    (e1, e2), (v1, v2, v3) = leader.executors, leader.verifiers
    leader.receive(env(signer_of(e1), Response("a", "m")), 200)

    def score(by: bytes | NaclSigner, of: bytes, value: float = 0.5, now: int = 300) -> list[str]:
        signer = by if isinstance(by, NaclSigner) else signer_of(by)
        return rejected(leader.receive(env(signer, Score(of, value, "r", "j")), now))

    assert score(e1, e1) == ["self_score"]  # an executor judging its own answer
    assert score(e2, e1) == ["not_verifier"]  # an executor judging another
    assert score(STRANGER, e1) == ["not_verifier"]
    assert score(v1, v2) == ["unknown_executor"]
    assert score(v1, STRANGER.peer_id) == ["unknown_executor"]
    assert score(v1, e1, 0.7) == []
    assert score(v1, e1, 0.1) == ["duplicate"]
    assert leader.scores == {e1: {v1: 0.7}}
    assert score(v2, e2, 0.6) == []  # may overtake e2's response: kept
    assert leader.scores[e2] == {v2: 0.6}
    leader.receive(env(signer_of(e2), Response("b", "m")), 400)
    # verify deadline = 100 + 2000 + 3000: a score at 5100 is late and the tally already ran
    assert score(v3, e1, 0.9, now=5_100) == ["late"]
    assert leader.result is not None and leader.result.scores[e1][v3] is None


def test_batched_scores_follow_the_same_rules_per_entry() -> None:
    leader = leader_with(4)
    (e1, e2), (v1, _v2) = leader.executors, leader.verifiers
    body = Scores((ScoreEntry(e1, 0.4), ScoreEntry(v1, 0.9), ScoreEntry(e2, 0.2)), "j")
    effects = leader.receive(env(signer_of(v1), body), 200)
    assert rejected(effects) == ["self_score"]
    assert leader.scores == {e1: {v1: 0.4}, e2: {v1: 0.2}}


def test_finalizes_early_when_every_score_arrived() -> None:
    leader = leader_with(4)
    (e1, e2), (v1, v2) = leader.executors, leader.verifiers
    for e in (e1, e2):
        leader.receive(env(signer_of(e), Response(f"from {e[-2:].hex()}", "m")), 200)
    assert leader.stage == Stage.VERIFY
    for v, values in ((v1, (0.8, 0.3)), (v2, (0.6, 0.5))):
        for e, value in zip((e1, e2), values, strict=True):
            effects = leader.receive(env(signer_of(v), Score(e, value, "", "j")), 300)
    (result,) = published(effects, Result)
    assert Finished(TASK, result) in effects
    assert leader.stage == Stage.DONE and leader.next_deadline() is None
    assert result.winner == e1 and result.score == pytest.approx(0.7)
    assert result.text == f"from {e1[-2:].hex()}"
    assert result.scores == {e1: {v1: 0.8, v2: 0.6}, e2: {v1: 0.3, v2: 0.5}}
    assert result.counts == {e1: 2, e2: 2} and result.missing == ()
    snap = leader.snapshot()
    assert snap.winner == e1 and snap.stage == Stage.DONE and snap.role == Role.LEADER


def test_silent_verifier_is_missing_not_zero() -> None:
    leader = leader_with(4)
    (e1, e2), (v1, v2) = leader.executors, leader.verifiers
    leader.receive(env(signer_of(e1), Response("a", "m")), 200)
    leader.receive(env(signer_of(e2), Response("b", "m")), 200)
    leader.receive(env(signer_of(v1), Score(e1, 0.2, "", "j")), 300)
    leader.receive(env(signer_of(v1), Score(e2, 0.4, "", "j")), 300)
    assert leader.stage == Stage.VERIFY  # v2 still expected
    (result,) = published(leader.tick(5_100), Result)
    assert result.missing == (v2,)
    assert result.scores[e1][v2] is None
    assert result.averages == {e1: pytest.approx(0.2), e2: pytest.approx(0.4)}
    assert result.winner == e2


def test_manual_finalize() -> None:
    leader = leader_with(2, assign=False, auto_finalize=False)
    with pytest.raises(StateError, match="ack first"):
        leader.finalize(50)
    leader.ack(100)
    (e1,), (v1,) = leader.executors, leader.verifiers
    leader.receive(env(signer_of(e1), Response("a", "m")), 200)
    leader.receive(env(signer_of(v1), Score(e1, 0.5, "", "j")), 300)
    assert leader.stage == Stage.FINALIZE  # everything arrived; waits for the operator
    assert leader.next_deadline() == 5_100  # ...but never past the verify deadline
    (result,) = published(leader.finalize(400), Result)
    assert result.winner == e1
    with pytest.raises(StateError, match="already done"):
        leader.finalize(500)
    with pytest.raises(StateError):
        leader.abort(500)


def test_operator_finalize_during_execute_uses_what_arrived() -> None:
    leader = leader_with(4)
    e1 = leader.executors[0]
    leader.receive(env(signer_of(e1), Response("a", "m")), 200)
    (result,) = published(leader.finalize(300), Result)
    assert result.winner is None and set(result.missing) == {leader.executors[1], *leader.verifiers}


def test_operator_abort() -> None:
    leader = leader_with(2)
    effects = leader.abort(150, "changed my mind")
    assert published(effects, Abort) == [Abort("changed my mind")]
    assert leader.stage == Stage.ABORTED


def test_leader_only_messages_from_others_rejected() -> None:
    leader = leader_with(2)
    (e1,), (v1,) = leader.executors, leader.verifiers
    forged = Result(None, None, "", "mean", {e1: None}, {e1: 0}, {e1: {v1: None}})
    for body in (Assign((v1,), (e1,), "p"), forged, Abort("x"), ADV):
        assert rejected(leader.receive(env(signer_of(v1), body), 150)) == ["not_leader"]
    assert leader.stage == Stage.EXECUTE


def test_wrong_task_and_own_echo() -> None:
    leader = leader_with(2)
    assert rejected(leader.receive(env(P[0], Response("a", "m"), task="other"), 150)) == [
        "wrong_task"
    ]
    assert leader.receive(env(LEAD, Abort("echo")), 150) == []  # our own publish, ignored


# --- participant ---------------------------------------------------------------------------------
def participant(me: NaclSigner, **kw: object) -> tuple[ParticipantSession, list]:
    adv = env(LEAD, ADV)
    session = ParticipantSession.from_advertise(adv, me.peer_id, model="m", backend="sim", **kw)  # type: ignore[arg-type]
    return session, session.start(0)


def test_participant_joins_on_start() -> None:
    session, effects = participant(P[0])
    assert effects[0] == Subscribe(TASK)
    assert published(effects, Join) == [Join("m", "sim")]
    # a join goes to the leader's topic only (the leader subscribed to it before advertising)
    assert [e.topic for e in effects if isinstance(e, Publish)] == [TASK + "/lead"]
    assert session.role == Role.PENDING and session.next_deadline() == 1_000 + 5_000


def test_participant_ignores_assign_result_abort_from_non_leader() -> None:
    session, _ = participant(P[0])
    me, other = P[0].peer_id, P[1].peer_id
    assert rejected(session.receive(env(P[1], Assign((me,), (other,), "p")), 10)) == ["not_leader"]
    assert rejected(session.receive(env(P[1], Abort("x")), 10)) == ["not_leader"]
    assert session.stage == Stage.ADVERTISE and session.role == Role.PENDING


def test_executor_generates_and_responds_once() -> None:
    session, _ = participant(P[0])
    me, other = P[0].peer_id, P[1].peer_id
    effects = session.receive(env(LEAD, Assign((me,), (other,), "the prompt")), 100)
    assert session.role == Role.EXECUTOR
    assert Generate(TASK, "the prompt", 2_100) in effects
    effects = session.generation_done("42", "m", 7, 500)
    assert published(effects, Response) == [Response("42", "m", 7)]
    assert session.stage == Stage.VERIFY  # the only executor answered
    assert session.generation_done("43", "m", 7, 600) == []  # never twice


def test_executor_too_late_does_not_respond() -> None:
    session, _ = participant(P[0])
    session.receive(env(LEAD, Assign((P[0].peer_id,), (P[1].peer_id,), "p")), 100)
    effects = session.generation_done("42", "m", 7, 2_100)
    assert not published(effects, Response)
    assert any(isinstance(e, Notice) for e in effects)


def test_verifier_judges_each_response_as_it_arrives() -> None:
    session, _ = participant(P[0])
    me, e1, e2 = P[0].peer_id, P[1].peer_id, P[2].peer_id
    session.receive(env(LEAD, Assign((e1, e2), (me,), "p")), 100)
    assert session.role == Role.VERIFIER
    effects = session.receive(env(P[1], Response("one", "m")), 200)
    assert effects == [Judge(TASK, "p", e1, "one", 5_100)]
    assert rejected(session.receive(env(P[1], Response("again", "m")), 210)) == ["duplicate"]
    assert rejected(session.receive(env(P[3], Response("x", "m")), 210)) == ["not_executor"]
    (judge,) = [
        e for e in session.receive(env(P[2], Response("two", "m")), 300) if isinstance(e, Judge)
    ]
    assert judge.executor == e2
    # judgements complete out of order, each published at once
    done = session.judgement_done(e2, 0.3, "meh", "j", 400)
    assert [e.topic for e in done if isinstance(e, Publish)] == [TASK + "/lead"]  # leader only
    assert published(done, Score) == [Score(e2, 0.3, "meh", "j")]
    assert published(session.judgement_done(e1, 0.9, "good", "j", 500), Score) == [
        Score(e1, 0.9, "good", "j")
    ]
    assert session.judgement_done(e1, 0.1, "again", "j", 600) == []  # once per executor
    assert session.stage == Stage.FINALIZE  # everything expected is in: waiting for the result


def test_verifier_never_judges_itself_even_if_listed_twice() -> None:
    # a leader cannot list a peer in both roles: the Assign body refuses it
    with pytest.raises(Exception, match="both"):
        Assign((P[0].peer_id,), (P[0].peer_id,), "p")


def test_verifier_batch_mode_sends_one_scores_message() -> None:
    session, _ = participant(P[0], batch_scores=True)
    me, e1, e2 = P[0].peer_id, P[1].peer_id, P[2].peer_id
    session.receive(env(LEAD, Assign((e1, e2), (me,), "p")), 100)
    session.receive(env(P[1], Response("one", "m")), 200)
    assert not published(session.judgement_done(e1, 0.5, "", "j", 250), Scores)  # e2 still due
    session.receive(env(P[2], Response("two", "m")), 300)
    (batch,) = published(session.judgement_done(e2, 0.6, "", "j", 350), Scores)
    assert [(e.executor, e.score) for e in batch.entries] == [(e1, 0.5), (e2, 0.6)]


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


def test_participant_buffers_work_that_overtakes_the_assignment() -> None:
    session, _ = participant(P[0])
    me, e1 = P[0].peer_id, P[1].peer_id
    assert session.receive(env(P[1], Response("early", "m")), 50) == []
    effects = session.receive(env(LEAD, Assign((e1,), (me,), "p")), 100)
    assert Judge(TASK, "p", e1, "early", 5_100) in effects


def test_participant_gives_up_without_assignment_or_result() -> None:
    session, _ = participant(P[0], grace_ms=500)
    effects = session.tick(1_500)
    assert session.stage == Stage.ABORTED and any(isinstance(e, Aborted) for e in effects)
    session, _ = participant(P[0], grace_ms=500)
    session.receive(env(LEAD, Assign((P[1].peer_id,), (P[0].peer_id,), "p")), 100)
    assert session.next_deadline() == 2_100
    session.tick(5_100)
    assert session.stage == Stage.FINALIZE and session.next_deadline() == 5_600
    session.tick(5_600)
    assert session.stage == Stage.ABORTED and "no result" in (session.abort_reason or "")


def test_participant_accepts_result_and_abort_from_leader_only() -> None:
    session, _ = participant(P[0])
    me, e1 = P[0].peer_id, P[1].peer_id
    session.receive(env(LEAD, Assign((e1,), (me,), "p")), 100)
    wrong_roles = Result(None, None, "", "mean", {me: None}, {me: 0}, {me: {e1: None}})
    assert rejected(session.receive(env(LEAD, wrong_roles), 200)) == ["result_mismatch"]
    good = Result(e1, 0.5, "t", "mean", {e1: 0.5}, {e1: 1}, {e1: {me: 0.5}})
    assert rejected(session.receive(env(P[2], good), 200)) == ["not_leader"]
    effects = session.receive(env(LEAD, good), 200)
    assert Finished(TASK, good) in effects and session.stage == Stage.DONE
    assert rejected(session.receive(env(P[1], Response("late", "m")), 300)) == ["late"]


def test_participant_scores_view_follows_the_rules() -> None:
    session, _ = participant(P[0], join=False)
    e1, v1, v2 = P[1].peer_id, P[2].peer_id, P[3].peer_id
    session.receive(env(LEAD, Assign((e1,), (v1, v2), "p")), 100)
    assert session.role == Role.OBSERVER
    session.receive(env(P[1], Response("r", "m")), 150)
    assert rejected(session.receive(env(P[1], Score(e1, 0.9, "", "j")), 200)) == ["self_score"]
    assert session.receive(env(P[2], Score(e1, 0.4, "", "j")), 200) == []
    snap = session.snapshot()
    assert snap.scores == {e1: {v1: 0.4, v2: None}}
    assert snap.averages == {e1: pytest.approx(0.4)} and snap.counts == {e1: 1}
    assert snap.responses == {e1: "r"} and snap.winner is None


def test_swarm_happy_path_every_node_agrees() -> None:
    s = Swarm(providers=6, auto_assign_at=6, advertise=ADV)
    s.settle()
    assert s.now == 0 and s.leader.stage == Stage.DONE
    for p in s.participants.values():
        assert p.stage == Stage.DONE and p.result == s.leader.result
    assert all(not s.rejected(n) for n in s.signers)
    roles = sorted(p.role for p in s.participants.values())
    assert roles == [Role.EXECUTOR] * 3 + [Role.VERIFIER] * 3


def test_snapshot_to_dict_is_json_with_base58_ids() -> None:
    import json

    from protocol.identity import peer_id_to_str

    s = Swarm(providers=2, auto_assign_at=2, advertise=ADV)
    s.settle()
    d = s.leader.snapshot().to_dict()
    json.dumps(d)
    assert d["stage"] == "done" and d["role"] == "leader"
    assert d["leader"] == peer_id_to_str(LEAD.peer_id)
    (ex,) = d["executors"]
    (ver,) = d["verifiers"]
    assert d["winner"] == ex and set(d["scores"][ex]) == {ver}
    assert d["responses"][ex].startswith("answer of")
    # The typed form the node's events are cut from names every field, and only those.
    assert set(d) == set(SnapshotDict.__annotations__)


def test_generate_carries_advertised_params() -> None:
    adv = Advertise(prompt="p", params={"temperature": 0.2})
    session = ParticipantSession(TASK, P[0].peer_id, LEAD.peer_id, adv, model="m", backend="sim")
    session.start(0)
    effects = session.receive(env(LEAD, Assign((P[0].peer_id,), (P[1].peer_id,), "p")), 1)
    (gen,) = [e for e in effects if isinstance(e, Generate)]
    assert gen.params == {"temperature": 0.2}


@pytest.mark.parametrize(("given", "sent"), [(1.0, 0.99), (-0.5, 0.0), (0.42, 0.42)])
def test_judge_score_clamped_to_range(given: float, sent: float) -> None:
    session, _ = participant(P[0])
    e1 = P[1].peer_id
    session.receive(env(LEAD, Assign((e1,), (P[0].peer_id,), "p")), 100)
    session.receive(env(P[1], Response("r", "m")), 200)
    (score,) = published(session.judgement_done(e1, given, "r", "j", 300), Score)
    assert score.score == sent


def test_judge_nan_is_a_failed_judgement() -> None:
    session, _ = participant(P[0])
    e1 = P[1].peer_id
    session.receive(env(LEAD, Assign((e1,), (P[0].peer_id,), "p")), 100)
    session.receive(env(P[1], Response("r", "m")), 200)
    effects = session.judgement_done(e1, float("nan"), "r", "j", 300)
    assert not published(effects, Score) and any(isinstance(e, Notice) for e in effects)
    assert session.snapshot().scores[e1][P[0].peer_id] is None
    # ... and the leader is told, so it need not wait for that score
    assert [b.failed for b in published(effects, Scores)] == [(e1,)]


def test_a_verifier_that_could_not_judge_says_so_and_the_leader_does_not_wait() -> None:
    leader = leader_with(4)
    (e1, e2), (v1, v2) = leader.executors, leader.verifiers
    for e in (e1, e2):
        leader.receive(env(signer_of(e), Response(f"from {e[-2:].hex()}", "m")), 200)
    leader.receive(env(signer_of(v1), Scores((ScoreEntry(e1, 0.8), ScoreEntry(e2, 0.3)), "j")), 300)
    assert leader.stage == Stage.VERIFY  # v2 still expected
    # v2's judge failed on e1 and scored e2: finalized at once, not at the verify deadline
    report = Scores((ScoreEntry(e2, 0.5),), "j", failed=(e1,))
    effects = leader.receive(env(signer_of(v2), report), 310)
    (result,) = published(effects, Result)
    assert leader.stage == Stage.DONE
    assert result.scores == {e1: {v1: 0.8, v2: None}, e2: {v1: 0.3, v2: 0.5}}  # missing, not 0
    assert result.averages == {e1: pytest.approx(0.8), e2: pytest.approx(0.4)}
    assert result.winner == e1 and result.missing == ()


def test_failure_reports_follow_the_score_rules() -> None:
    leader = leader_with(4)
    (e1, e2), (v1, v2) = leader.executors, leader.verifiers
    leader.receive(env(signer_of(e1), Response("a", "m")), 200)
    effects = leader.receive(env(signer_of(e2), Scores((), "j", failed=(e1,))), 250)
    assert rejected(effects) == ["not_verifier"]
    effects = leader.receive(env(signer_of(v1), Scores((), "j", failed=(v1,))), 260)
    assert rejected(effects) == ["self_score"]
    leader.receive(env(signer_of(v1), Score(e1, 0.4, "", "j")), 270)
    effects = leader.receive(env(signer_of(v1), Scores((), "j", failed=(e1,))), 280)
    assert rejected(effects) == ["duplicate"]  # scored already: a later failure changes nothing
    assert leader.scores[e1] == {v1: 0.4} and v2 not in leader.failed.get(e1, ())


def test_a_failed_judgement_is_reported_once_alone_or_in_the_batch() -> None:
    me, e1, e2 = P[0].peer_id, P[1].peer_id, P[2].peer_id
    single, _ = participant(P[0])
    single.receive(env(LEAD, Assign((e1, e2), (me,), "p")), 100)
    single.receive(env(P[1], Response("one", "m")), 200)
    effects = single.judgement_failed(e1, "timeout", 250)
    assert [(b.entries, b.failed) for b in published(effects, Scores)] == [((), (e1,))]
    assert [e.topic for e in effects if isinstance(e, Publish)] == [TASK + "/lead"]

    batch, _ = participant(P[0], batch_scores=True)
    batch.receive(env(LEAD, Assign((e1, e2), (me,), "p")), 100)
    batch.receive(env(P[1], Response("one", "m")), 200)
    assert not published(batch.judgement_failed(e1, "timeout", 250), Scores)  # e2 still due
    batch.receive(env(P[2], Response("two", "m")), 300)
    (sent,) = published(batch.judgement_done(e2, 0.6, "", "j", 350), Scores)
    assert [(e.executor, e.score) for e in sent.entries] == [(e2, 0.6)] and sent.failed == (e1,)
