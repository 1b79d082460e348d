"""The session engine in one process, over a stand-in runtime (no network): auto-join and its
limits, the options, and the event shapes. The multi-process tests cover the real wiring."""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
import trio.testing

from node import events as ev
from node.sessions import (
    FailureCode,
    SessionEngine,
    SessionFailed,
    SessionOptions,
    add_session_flags,
    options_from_args,
    result_event,
    snapshot_event,
)
from node.sessions.ports import mono_ms
from protocol.envelope import seal
from protocol.identity import NaclSigner
from protocol.messages import Advertise, Assign
from protocol.session import LeaderSession

ME = NaclSigner(bytes([9]) * 32)
LEADERS = [NaclSigner(bytes([20 + i]) * 32) for i in range(3)]


class FakeBackend:
    model, backend = "sim/honest", "sim"


@dataclass
class FakeHost:
    def hub_connected(self) -> bool:
        return True  # everything goes through the hub: joins and scores to the leader topic


@dataclass
class FakeRuntime:
    """What the engine uses of NodeRuntime, recorded."""

    nursery: Any = None
    peer_id: bytes = ME.peer_id
    host: FakeHost = field(default_factory=FakeHost)
    events: list = field(default_factory=list)
    joined: list = field(default_factory=list)
    published: list = field(default_factory=list)
    seq: int = 0

    def emit(self, event: ev.Event) -> None:
        self.events.append(event)

    def reject(self, *args: Any) -> None:
        self.events.append(("rejected", args))

    async def join_topic(self, topic: str, handler: Any) -> bool:
        self.joined.append(topic)
        return True

    async def leave_topic(self, topic: str) -> bool:
        return True

    async def publish_envelope(self, topic: str, body: Any, task: str = "") -> Any:
        self.seq += 1
        env = seal(body, task=task, signer=ME, seq=self.seq, ts_ms=int(time.time() * 1000))
        self.published.append(env)
        return env


def advertise(leader: NaclSigner, task: str) -> Any:
    return seal(Advertise(prompt="What is 2+2?"), task=task, signer=leader, seq=1, ts_ms=1)


async def feed_adverts(options: SessionOptions) -> FakeRuntime:
    rt = FakeRuntime()
    engine = SessionEngine(rt, FakeBackend(), None, options)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        rt.nursery = nursery
        for i, leader in enumerate(LEADERS):
            await engine._on_advertise(advertise(leader, f"task-{i}"))
        await engine._on_advertise(advertise(LEADERS[0], "task-0"))  # seen again: ignored
        with trio.fail_after(5):
            await trio.testing.wait_all_tasks_blocked()  # the engine's tasks published the joins
        nursery.cancel_scope.cancel()
    return rt


def test_auto_join_respects_the_session_limit() -> None:
    rt = trio.run(feed_adverts, SessionOptions(max_sessions=2))
    # the session topic and the judge topic (blind items) of each session joined
    assert sorted(rt.joined) == ["task-0", "task-0/judge", "task-1", "task-1/judge"]
    assert [e.kind for e in rt.published] == ["join", "join"]
    shown = [e for e in rt.events if isinstance(e, ev.Message) and e.kind == "advertise"]
    assert len(shown) == 4, "every advertisement is shown, joined or not"
    sessions = [e for e in rt.events if isinstance(e, ev.Session)]
    assert {s.task for s in sessions} == {"task-0", "task-1"}
    assert all(s.role == "pending" and s.stage == "advertise" for s in sessions)


def test_one_session_per_leader_and_no_overlong_session() -> None:
    """The join policy (protocol.admission): a second gathering session of the same leader
    (with --max-per-leader 1), or one whose deadlines add up to more than 10 minutes, is
    declined."""

    async def feed() -> FakeRuntime:
        rt = FakeRuntime()
        engine = SessionEngine(rt, FakeBackend(), None, SessionOptions(max_per_leader=1))  # type: ignore[arg-type]
        long = Advertise(prompt="p", join_ms=60_000, exec_ms=600_000, verify_ms=60_000)
        async with trio.open_nursery() as nursery:
            rt.nursery = nursery
            await engine._on_advertise(advertise(LEADERS[0], "task-a"))
            await engine._on_advertise(advertise(LEADERS[0], "task-b"))  # same leader: no
            await engine._on_advertise(
                seal(long, task="task-c", signer=LEADERS[1], seq=1, ts_ms=1)
            )  # 12 minutes: no
            with trio.fail_after(5):
                await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        return rt

    rt = trio.run(feed)
    assert [t for t in rt.joined if "/" not in t] == ["task-a"]


async def assign(engine: SessionEngine, task: str, executors: tuple, verifiers: tuple) -> None:
    """LEADERS[0] assigns ``task`` (the engine's session of it), then everything settles."""
    env = seal(Assign(executors, verifiers, "p"), task=task, signer=LEADERS[0], seq=2, ts_ms=2)
    await engine._driver.on_envelope(engine.sessions[task], env)
    with trio.fail_after(5):
        await trio.testing.wait_all_tasks_blocked()


def test_a_leader_at_its_cap_waits_and_its_advert_is_joined_when_one_starts() -> None:
    """--max-per-leader 1: the leader's second advertisement is remembered, not dropped; once
    the first session is assigned (it no longer gathers), the second is joined."""

    async def feed() -> FakeRuntime:
        rt = FakeRuntime()
        engine = SessionEngine(rt, FakeBackend(), None, SessionOptions(max_per_leader=1))  # type: ignore[arg-type]
        async with trio.open_nursery() as nursery:
            rt.nursery = nursery
            await engine._on_advertise(advertise(LEADERS[0], "task-a"))
            await engine._on_advertise(advertise(LEADERS[0], "task-b"))  # at the cap: waits
            with trio.fail_after(5):
                await trio.testing.wait_all_tasks_blocked()
            assert [e.task for e in rt.published if e.kind == "join"] == ["task-a"]
            await assign(engine, "task-a", (ME.peer_id,), (LEADERS[2].peer_id,))
            nursery.cancel_scope.cancel()
        return rt

    rt = trio.run(feed)
    assert [e.task for e in rt.published if e.kind == "join"] == ["task-a", "task-b"]


def test_a_one_slot_verifier_waiting_joins_one_more_session_not_a_queue_of_them() -> None:
    """--slots 1: a verifier waiting for answers holds no slot, so the provider joins the next
    advert; once two sessions owe it work (PROMISE_FACTOR x 1 slot) it joins no third."""

    async def feed() -> FakeRuntime:
        rt = FakeRuntime()
        engine = SessionEngine(rt, FakeBackend(), None, SessionOptions(slots=1))  # type: ignore[arg-type]
        async with trio.open_nursery() as nursery:
            rt.nursery = nursery
            for task in ("task-a", "task-b", "task-c"):
                await engine._on_advertise(advertise(LEADERS[0], task))
            with trio.fail_after(5):
                await trio.testing.wait_all_tasks_blocked()
            assert [e.task for e in rt.published if e.kind == "join"] == ["task-a"]  # 1 slot
            for task in ("task-a", "task-b"):
                await assign(engine, task, (LEADERS[2].peer_id,), (ME.peer_id,))
            nursery.cancel_scope.cancel()
        return rt

    rt = trio.run(feed)
    assert [e.task for e in rt.published if e.kind == "join"] == ["task-a", "task-b"]


def test_a_joiner_not_picked_is_released_and_joins_a_declined_session() -> None:
    """--max-sessions 1: the second advertisement is declined; when the first session's
    assignment leaves this node out (Released), the declined one, still gathering, is joined."""

    async def feed() -> tuple[FakeRuntime, SessionEngine]:
        rt = FakeRuntime()
        engine = SessionEngine(rt, FakeBackend(), None, SessionOptions(max_sessions=1))  # type: ignore[arg-type]
        async with trio.open_nursery() as nursery:
            rt.nursery = nursery
            await engine._on_advertise(advertise(LEADERS[0], "task-a"))
            await engine._on_advertise(advertise(LEADERS[1], "task-b"))  # full: declined
            with trio.fail_after(5):
                await trio.testing.wait_all_tasks_blocked()
            assert [e.task for e in rt.published] == ["task-a"]
            await assign(engine, "task-a", (LEADERS[2].peer_id,), (LEADERS[1].peer_id,))
            nursery.cancel_scope.cancel()
        return rt, engine

    rt, engine = trio.run(feed)
    assert engine.sessions["task-a"].machine.finished  # released at once
    assert [e.task for e in rt.published if e.kind == "join"] == ["task-a", "task-b"]


def test_no_auto_join_joins_nothing() -> None:
    rt = trio.run(feed_adverts, SessionOptions(auto_join=False))
    assert rt.joined == [] and rt.published == []


def test_options_from_flags_and_fitting() -> None:
    parser = argparse.ArgumentParser()
    add_session_flags(parser)
    args = parser.parse_args(
        ["--join-deadline", "2", "--exec-deadline", "0.5", "--aggregator", "median"]
    )
    opts = options_from_args(args)
    assert (opts.join_ms, opts.manual_join_ms, opts.exec_ms, opts.aggregator) == (
        2000,
        2000,
        500,
        "median",
    )
    assert options_from_args(parser.parse_args([])) == SessionOptions()
    assert options_from_args(parser.parse_args(["--executors", "3"])).executors == 3
    with pytest.raises(ValueError, match="--executors"):
        options_from_args(parser.parse_args(["--executors", "-2"]))
    with pytest.raises(ValueError, match="positive"):
        options_from_args(parser.parse_args(["--verify-deadline", "-1"]))
    with pytest.raises(ValueError, match="max sessions"):
        SessionOptions(max_sessions=-1)
    fitted = SessionOptions().fitted(10)
    assert fitted.join_ms + fitted.exec_ms + fitted.verify_ms <= 9_000
    assert SessionOptions(join_ms=100, exec_ms=100, verify_ms=100).fitted(10).join_ms == 100


def test_result_event_without_a_result_is_empty_not_zero() -> None:
    machine = LeaderSession("t", ME.peer_id, Advertise(prompt="q"), rng=random.Random(0))
    machine.start(0)
    evt = result_event(machine.snapshot(), None, {"total": 1.0}, "aborted")
    assert evt.winner is None and evt.score is None and evt.text == ""
    assert evt.missing == ev.Missing()
    assert evt.to_dict()["missing"] == {
        "executors": [],
        "verifiers": [],
        "scores": {},
        "invalid": {},
    }
    assert ev.event_from_dict(evt.to_dict()) == evt, "the dict form round-trips, typed"


def test_snapshot_event_deadline_is_wall_clock() -> None:
    """The machine runs on the monotonic clock; the event shows the deadline as wall time."""
    machine = LeaderSession(
        "t", ME.peer_id, Advertise(prompt="q", join_ms=5_000), rng=random.Random(0)
    )
    machine.start(mono_ms())
    evt = snapshot_event(machine.snapshot())
    assert evt.stage_deadline_ms is not None
    assert abs(evt.stage_deadline_ms - (time.time() * 1000 + 5_000)) < 1_000


def test_a_pipe_nobody_joins_fails_as_not_enough_providers_by_cause() -> None:
    """The failure code comes from the machine's AbortCause, not from the reason's wording."""

    async def run() -> SessionFailed:
        rt = FakeRuntime()
        engine = SessionEngine(rt, FakeBackend(), None, SessionOptions())  # type: ignore[arg-type]
        opts = SessionOptions(join_ms=50, exec_ms=50, verify_ms=50)
        async with trio.open_nursery() as nursery:
            rt.nursery = nursery
            with pytest.raises(SessionFailed) as failed:
                with trio.fail_after(5):
                    await engine._pipe_trio("task-lonely", "q", 2, opts, 5.0, None)
            nursery.cancel_scope.cancel()
        (result,) = [e for e in rt.events if isinstance(e, ev.Result)]
        assert result.winner is None and "not enough participants" in result.reason
        return failed.value

    failure = trio.run(run)
    assert failure.code == FailureCode.NOT_ENOUGH_PROVIDERS and failure.task == "task-lonely"


def test_deadline_defaults_are_defined_once() -> None:
    opts, advertise = SessionOptions(), Advertise(prompt="q")
    assert (opts.join_ms, opts.exec_ms, opts.verify_ms) == (10_000, 60_000, 60_000)
    assert (advertise.join_ms, advertise.exec_ms, advertise.verify_ms) == (
        opts.join_ms,
        opts.exec_ms,
        opts.verify_ms,
    )
