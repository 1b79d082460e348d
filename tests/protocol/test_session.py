"""Session machines: one test per rule. Leaders are driven by hand with real sealed envelopes;
whole sessions run through the in-memory :class:`~tests.protocol.helpers.Swarm`."""

from __future__ import annotations

import random

import pytest

from protocol.envelope import Envelope, open_envelope, seal
from protocol.errors import StateError
from protocol.identity import NaclSigner
from protocol.messages import (
    MESH_TOPIC,
    Abort,
    Advertise,
    Assign,
    Body,
    Item,
    Join,
    Response,
    Result,
    Reveal,
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
    LeaderSession,
    Publish,
    Rejected,
    Role,
    Stage,
    StageChanged,
    Subscribe,
    Unsubscribe,
)
from protocol.tally import split_roles
from tests.protocol.helpers import TASK
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
    """A started leader with ``n`` providers joined (and assigned unless ``assign=False``);
    no canaries unless asked for."""
    kw.setdefault("canary_rate", 0.0)
    leader = LeaderSession(TASK, LEAD.peer_id, ADV, rng=random.Random(seed), **kw)  # type: ignore[arg-type]
    leader.start(0)
    for p in P[:n]:
        assert leader.receive(env(p, Join("m", "sim")), 10) == []
    if assign:
        leader.ack(100)
    return leader


def signer_of(peer: bytes) -> NaclSigner:
    return next(s for s in SIGNERS if s.peer_id == peer)


def respond(leader: LeaderSession, ex: bytes, text: str, now: int = 200) -> list:
    return leader.receive(env(signer_of(ex), Response(text, "m")), now)


def score(
    leader: LeaderSession,
    by: bytes | NaclSigner,
    of: bytes | str,
    value: float = 0.5,
    now: int = 300,
) -> list:
    """``by`` scores the label of executor ``of`` (or the label ``of`` itself)."""
    signer = by if isinstance(by, NaclSigner) else signer_of(by)
    label = of if isinstance(of, str) else leader.labels[of]
    return leader.receive(env(signer, Score(label, value, "r", "j")), now)


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
        Subscribe(TASK + "/lead"),  # joins, responses and scores come only to the leader
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


def test_ack_takes_every_joiner_up_to_the_cap() -> None:
    leader = leader_with(6, assign=False, cap=4)
    (assign,) = published(leader.ack(100), Assign)
    picked = {*assign.executors, *assign.verifiers}
    assert len(picked) == 4 and picked < {p.peer_id for p in P[:6]}
    assert leader.requested == 4 and leader.joined_count == 6
    everyone = leader_with(6, assign=False)
    (assign,) = published(everyone.ack(100), Assign)
    assert len(assign.executors) + len(assign.verifiers) == 6


def test_roles_split_by_seeded_rng_reproducibly() -> None:
    a = leader_with(5, seed=42, split="original")
    b = leader_with(5, seed=42, split="original")
    assert (a.executors, a.verifiers) == (b.executors, b.verifiers)
    joined = sorted(p.peer_id for p in P[:5])
    assert (a.executors, a.verifiers) == split_roles(joined, random.Random(42), "original")
    c = leader_with(5, seed=42)
    assert set(c.executors).isdisjoint(c.verifiers) and len(c.executors) == 2
    d = leader_with(5, seed=42, executors=1)  # one answer, four judges
    assert (len(d.executors), len(d.verifiers)) == (1, 4)
    with pytest.raises(ValueError):
        LeaderSession(TASK, LEAD.peer_id, ADV, rng=random.Random(0), executors=-1)


def test_pipe_mode_assigns_exactly_n_as_soon_as_n_joined() -> None:
    leader = leader_with(2, assign=False, auto_assign_at=3)
    assert leader.stage == Stage.ADVERTISE
    effects = leader.receive(env(P[2], Join("m", "sim")), 20)
    (assign,) = published(effects, Assign)
    assert len(assign.executors) + len(assign.verifiers) == 3 and leader.stage == Stage.EXECUTE
    assert leader.requested == 3


def test_join_deadline_runs_with_fewer_than_requested() -> None:
    leader = leader_with(2, assign=False, auto_assign_at=5, reannounce=0)
    assert leader.tick(999) == []
    effects = leader.tick(1_000)
    assert published(effects, Assign)
    assert leader.exec_deadline == 3_000
    assert (leader.requested, leader.joined_count) == (5, 2)


def test_short_of_joiners_the_leader_reannounces_a_bounded_number_of_times() -> None:
    leader = leader_with(1, assign=False, auto_assign_at=4, reannounce=2)
    assert leader.next_deadline() == 333  # join window 1000 ms, 2 re-announcements
    assert published(leader.tick(333), Advertise) == [ADV]  # the same statement again
    assert leader.next_deadline() == 666
    leader.receive(env(P[1], Join("m", "sim")), 400)
    assert published(leader.tick(700), Advertise) == [ADV]
    assert leader.reannounced == 2 and leader.next_deadline() == 1_000  # no more
    leader.receive(env(P[2], Join("m", "sim")), 800)
    assert published(leader.tick(1_000), Assign)


def test_no_reannouncement_once_enough_joined_or_without_a_target() -> None:
    leader = leader_with(2, assign=False)  # ack mode: no target, nothing to re-announce
    assert leader.next_deadline() == 1_000 and not published(leader.tick(999), Advertise)
    full = leader_with(2, assign=False, auto_assign_at=3)
    full.receive(env(P[2], Join("m", "sim")), 20)
    assert full.stage == Stage.EXECUTE and full.reannounced == 0


def test_join_deadline_aborts_with_fewer_than_two() -> None:
    leader = leader_with(1, assign=False, auto_assign_at=3, reannounce=0)
    effects = leader.tick(1_000)
    (abort,) = published(effects, Abort)
    assert "1 joined" in abort.reason
    assert Aborted(TASK, abort.reason, AbortCause.NOT_ENOUGH_PARTICIPANTS) in effects
    assert Unsubscribe(TASK) in effects
    assert leader.finished and leader.next_deadline() is None


# --- leader: blind items ------------------------------------------------------------------------
def test_each_response_is_forwarded_at_once_as_a_blind_item() -> None:
    leader = leader_with(4)
    (e1, e2), _ = leader.executors, leader.verifiers
    assert sorted(leader.labels.values()) == ["A", "B"]
    first = env(signer_of(e2), Response("two", "m"))
    effects = leader.receive(first, 200)
    (item,) = published(effects, Item)
    assert item == Item(leader.labels[e2], "two", first.digest, 2)
    assert [e.topic for e in effects if isinstance(e, Publish)] == [TASK + "/judge"]
    assert leader.stage == Stage.EXECUTE  # e1 still due: no waiting to forward e2
    (item,) = published(respond(leader, e1, "one"), Item)
    assert item.label == leader.labels[e1] and leader.stage == Stage.VERIFY


def test_labels_hide_executor_and_arrival_order() -> None:
    """Across seeds, the first executor (sorted) gets every label equally often."""
    seen = {
        leader_with(6, seed=seed).labels[min(leader_with(6, seed=seed).executors)]
        for seed in range(40)
    }
    assert seen == {"A", "B", "C"}


def test_canaries_go_out_next_to_their_source_under_their_own_label() -> None:
    leader = leader_with(4, canary_rate=1.0)
    e1, _e2 = leader.executors
    assert len(leader.canary_of) == 2 and leader.items_total == 4
    effects = respond(leader, e1, "The answer is 4. Two plus two makes 4.")
    items = published(effects, Item)
    assert len(items) == 2 and {i.total for i in items} == {4}
    real = next(i for i in items if i.label == leader.labels[e1])
    fake = next(i for i in items if i.label != leader.labels[e1])
    assert leader.canary_of[fake.label] == e1
    assert fake.text != real.text and fake.response != real.response
    assert "4" not in fake.text  # numbers changed


# --- leader: responses -------------------------------------------------------------------------
def test_only_assigned_executors_respond_once_in_time() -> None:
    leader = leader_with(4)
    ex, ver = leader.executors, leader.verifiers
    resp = Response("4", "m")
    assert rejected(leader.receive(env(signer_of(ver[0]), resp), 200)) == ["not_executor"]
    assert rejected(leader.receive(env(STRANGER, resp), 200)) == ["not_executor"]
    assert not rejected(leader.receive(env(signer_of(ex[0]), resp), 200))
    assert rejected(leader.receive(env(signer_of(ex[0]), Response("5", "m")), 210)) == ["duplicate"]
    assert leader.responses[ex[0]].body.text == "4"
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
    respond(leader, e1, "a")
    assert rejected(score(leader, e2, e1)) == ["not_verifier"]  # an executor judging another
    assert rejected(score(leader, STRANGER, e1)) == ["not_verifier"]
    assert rejected(score(leader, v1, "Q")) == ["unknown_label"]
    assert rejected(score(leader, v1, e2)) == ["unknown_label"]  # not forwarded yet
    assert not rejected(score(leader, v1, e1, 0.7))
    assert rejected(score(leader, v1, e1, 0.1)) == ["duplicate"]
    assert leader.label_scores == {leader.labels[e1]: {v1: 0.7}}
    respond(leader, e2, "b", 400)
    assert not rejected(score(leader, v2, e2, 0.6))
    # verify deadline = 100 + 2000 + 3000: a score at 5100 is late and the tally already ran
    assert rejected(score(leader, v3, e1, 0.9, now=5_100)) == ["late"]
    assert leader.result is not None and leader.result.scores[e1][v3] is None


def test_batched_scores_follow_the_same_rules_per_entry() -> None:
    leader = leader_with(4)
    (e1, e2), (v1, _v2) = leader.executors, leader.verifiers
    respond(leader, e1, "a")
    respond(leader, e2, "b")
    a, b = leader.labels[e1], leader.labels[e2]
    body = Scores((ScoreEntry(a, 0.4), ScoreEntry("Z", 0.9), ScoreEntry(b, 0.2)), "j")
    effects = leader.receive(env(signer_of(v1), body), 300)
    assert rejected(effects) == ["unknown_label"]
    assert leader.label_scores == {a: {v1: 0.4}, b: {v1: 0.2}}
    assert len(leader.batches) == 1  # counted: part of it was accepted


def test_finalizes_early_with_reveal_then_result() -> None:
    leader = leader_with(4)
    (e1, e2), (v1, v2) = leader.executors, leader.verifiers
    for e in (e1, e2):
        respond(leader, e, f"from {e[-2:].hex()}")
    assert leader.stage == Stage.VERIFY
    for v, values in ((v1, (0.8, 0.3)), (v2, (0.6, 0.5))):
        for e, value in zip((e1, e2), values, strict=True):
            effects = score(leader, v, e, value)
    kinds = [type(e.body).__name__ for e in effects if isinstance(e, Publish)]
    assert kinds == ["Reveal", "Result"]  # the transcript reaches everyone before the result
    (reveal,) = published(effects, Reveal)
    assert len(reveal.envelopes) == 2 + 4  # two responses, four score messages, raw
    (result,) = published(effects, Result)
    assert Finished(TASK, result) in effects
    assert leader.stage == Stage.DONE and leader.next_deadline() is None
    assert result.winner == e1 and result.score == pytest.approx(0.7)
    assert result.text == f"from {e1[-2:].hex()}"
    assert result.scores == {e1: {v1: 0.8, v2: 0.6}, e2: {v1: 0.3, v2: 0.5}}
    assert result.counts == {e1: 2, e2: 2} and result.missing == ()
    assert result.labels == leader.labels and (result.requested, result.joined) == (4, 4)
    assert result.commits is not None and len(result.commits.batches) == 4
    snap = leader.snapshot()
    assert snap.winner == e1 and snap.stage == Stage.DONE and snap.role == Role.LEADER


def test_canaries_never_win_and_their_scores_are_in_the_result() -> None:
    leader = leader_with(3, canary_rate=1.0, executors=1)  # one answer, its canary, two judges
    (e1,), (v1, v2) = leader.executors, leader.verifiers
    items = published(respond(leader, e1, "Paris is the capital of France."), Item)
    fake = next(i.label for i in items if i.label != leader.labels[e1])
    for v in (v1, v2):
        score(leader, v, e1, 0.3)
        effects = score(leader, v, fake, 0.9)  # fooled: the canary scored higher
    (result,) = published(effects, Result)
    assert result.winner == e1
    assert result.canaries == {fake: {v1: 0.9, v2: 0.9}}
    assert fake not in result.labels.values()


def test_silent_verifier_is_missing_not_zero() -> None:
    leader = leader_with(4)
    (e1, e2), (v1, v2) = leader.executors, leader.verifiers
    respond(leader, e1, "a")
    respond(leader, e2, "b")
    score(leader, v1, e1, 0.2)
    score(leader, v1, e2, 0.4)
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
    respond(leader, e1, "a")
    score(leader, v1, e1, 0.5)
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
    respond(leader, leader.executors[0], "a")
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
    item = Item("A", "x", b"\x00" * 32, 1)
    for body in (Assign((v1,), (e1,), "p"), forged, Abort("x"), ADV, item, Reveal(0, 1, ())):
        assert rejected(leader.receive(env(signer_of(v1), body), 150)) == ["not_leader"]
    assert leader.stage == Stage.EXECUTE


def test_wrong_task_and_own_echo() -> None:
    leader = leader_with(2)
    assert rejected(leader.receive(env(P[0], Response("a", "m"), task="other"), 150)) == [
        "wrong_task"
    ]
    assert leader.receive(env(LEAD, Abort("echo")), 150) == []  # our own publish, ignored


def test_canaries_may_be_answers_to_other_prompts_from_the_driver() -> None:
    from protocol.blind import make_canary

    stock = ("Paris.", "Blue whales.")
    made = {make_canary("4", random.Random(seed), stock) for seed in range(20)}
    assert {"Paris.", "Blue whales."} <= made  # sometimes a stock answer...
    assert made - set(stock)  # ...sometimes a corrupted copy
    assert "4" not in made
