"""Properties of the session machines under random joiner sets, delivery orders, message loss,
clock jumps, local failures and rule-breaking peers."""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from protocol.errors import StateError
from protocol.identity import NaclSigner
from protocol.messages import Abort, Advertise, Assign, Response, Result, Score, ScoreEntry, Scores
from protocol.session import Stage
from tests.protocol.helpers import Swarm

STRANGER = NaclSigner(b"\xee" * 32)
EVIL = 0.99  # honest scores in the Swarm are at most 0.89, so an accepted 0.99 is a breach


def honest(ex: bytes, ver: bytes) -> float:
    return (ex[-1] % 90) / 100


def inject(s: Swarm, data: st.DataObject) -> None:
    """A signed message that breaks a role rule (never a legitimate one)."""
    leader = s.leader
    ex, ver = leader.executors, leader.verifiers
    someone = data.draw(st.sampled_from(s.provider_ids))
    options = ["stranger_score", "stranger_response", "forged_abort", "forged_assign"]
    if ex:
        options += ["self_score", "verifier_response", "verifier_self_score", "forged_result"]
        options += ["batch_with_self"]
    if len(ex) >= 2:
        options.append("executor_scores_executor")
    kind = data.draw(st.sampled_from(options))
    event(f"inject {kind}")
    if kind == "stranger_score":
        s.inject(STRANGER, Score(someone, EVIL, "", "j"))
    elif kind == "stranger_response":
        s.inject(STRANGER, Response("evil", "m"))
    elif kind == "forged_abort":
        s.inject(someone, Abort("forged"))
    elif kind == "forged_assign":
        others = [p for p in s.provider_ids if p != someone]
        s.inject(someone, Assign((someone,), tuple(others), "evil prompt"))
    elif kind == "self_score":
        e = data.draw(st.sampled_from(ex))
        s.inject(e, Score(e, EVIL, "", "j"))
    elif kind == "verifier_response":
        s.inject(data.draw(st.sampled_from(ver)), Response("evil", "m"))
    elif kind == "verifier_self_score":
        v = data.draw(st.sampled_from(ver))
        s.inject(v, Score(v, EVIL, "", "j"))
    elif kind == "batch_with_self":
        v = data.draw(st.sampled_from(ver))
        s.inject(v, Scores((ScoreEntry(v, EVIL),), "j"))
    elif kind == "executor_scores_executor":
        a, b = data.draw(st.lists(st.sampled_from(ex), min_size=2, max_size=2, unique=True))
        s.inject(a, Score(b, EVIL, "", "j"))
    else:  # forged_result naming the forger as winner
        e = ex[0]
        forged = Result(
            e, EVIL, "evil", "mean", {x: EVIL for x in ex}, {x: len(ver) for x in ex},
            {x: dict.fromkeys(ver, EVIL) for x in ex},
        )  # fmt: skip
        s.inject(data.draw(st.sampled_from(ver)), forged)


def check_invariants(s: Swarm) -> None:
    leader = s.leader
    ex, ver = set(leader.executors), set(leader.verifiers)
    assert ex.isdisjoint(ver)
    if leader.stage != Stage.ADVERTISE and not (leader.stage == Stage.ABORTED and not ex):
        assert ex and ver
    for node in s.signers:
        session = s.session(node)
        if session is None:
            continue
        if session.executors:  # every node that saw an assignment saw the leader's
            assert set(session.executors) == ex and set(session.verifiers) == ver
        for e, row in session.scores.items():
            assert e in ex
            for v, value in row.items():
                assert v in ver and v != e
                assert value == honest(e, v)
        for e, response in session.responses.items():
            assert e in ex and response.text != "evil"
        if session.result is not None:
            assert session.result == leader.result
        assert session.prompt != "evil prompt"
    result = leader.result
    if result is not None:
        assert set(result.scores) == ex
        assert result.winner is None or result.winner in ex
        for e, row in result.scores.items():
            assert set(row) == ver
            assert all(v is None or v == honest(e, w) for w, v in row.items())


def check_deadlines(s: Swarm) -> None:
    """After time passed, no machine is still inside a stage whose deadline is over."""
    leader = s.leader
    if leader.join_deadline is not None and s.now >= leader.join_deadline:
        assert leader.stage != Stage.ADVERTISE
    if leader.verify_deadline is not None and s.now >= leader.verify_deadline:
        assert leader.finished
    for node in s.signers:
        session = s.session(node)
        if session is not None and not session.finished:
            deadline = session.next_deadline()
            assert deadline is not None and deadline > s.now


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    providers=st.integers(2, 7),
    auto=st.booleans(),
    split=st.sampled_from(["balanced", "original"]),
    batch=st.booleans(),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_random_schedules_respect_the_rules_and_always_finish(
    providers: int, auto: bool, split: str, batch: bool, seed: int, data: st.DataObject
) -> None:
    adv = Advertise(prompt="p", join_ms=1_000, exec_ms=2_000, verify_ms=3_000)
    s = Swarm(
        providers=providers,
        advertise=adv,
        seed=seed,
        auto_assign_at=providers if auto else None,
        split=split,
        participant_kw={"batch_scores": batch, "grace_ms": 500},
        score_of=honest,
    )
    # an in-order prefix gets many examples past the assignment, where the role rules matter
    for _ in range(data.draw(st.integers(0, 4 * providers))):
        if s.queue:
            s.step_delivery()
        elif s.work:
            s.step_work()
    steps = data.draw(st.integers(0, 60))
    for _ in range(steps):
        action = data.draw(
            st.sampled_from(
                ["deliver"] * 6 + ["work"] * 3 + ["advance", "inject", "drop", "fail", "operator"]
            )
        )
        if action in ("deliver", "drop") and s.queue:
            i = data.draw(st.integers(0, len(s.queue) - 1))
            item = s.queue[i]
            j = data.draw(st.integers(0, len(item.pending) - 1))
            if action == "drop":
                item.pending.pop(j)
                if not item.pending:
                    s.queue.remove(item)
            else:
                s.step_delivery(i, j)
        elif action in ("work", "fail") and s.work:
            s.step_work(data.draw(st.integers(0, len(s.work) - 1)), fail=action == "fail")
        elif action == "advance":
            s.advance(data.draw(st.integers(0, 3_000)))
            check_deadlines(s)
        elif action == "inject":
            inject(s, data)
        elif action == "operator":
            operate = data.draw(st.sampled_from([s.leader.ack, s.leader.finalize]))
            try:
                s.run(s.leader_id, operate(s.now))
            except StateError:
                pass
        check_invariants(s)
    s.run_to_end()
    check_invariants(s)
    assert s.leader.finished
    event(f"leader {s.leader.stage}")
    event(f"rejections seen: {min(3, sum(len(s.rejected(n)) for n in s.signers))}+")
    assert all(p.finished for p in s.participants.values())
    # finalized by the last deadline: at the latest when the clock first reached it
    final = max(d for d in (s.leader.join_deadline, s.leader.verify_deadline) if d is not None)
    first_reach = min((t for t in s.clock_history if t >= final), default=final)
    assert s.finished_at[s.leader_id] <= first_reach
