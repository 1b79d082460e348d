"""A provider's model slots in the session engine (one process, the stand-in runtime of
test_engine): a full provider does not join, joins a session still gathering once a slot frees,
and hands freed slots to leaders in turn."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import node.sessions.engine
import node.sessions.slots
from node.sessions import SessionEngine, SessionOptions
from protocol.envelope import seal
from protocol.identity import NaclSigner
from protocol.messages import Abort, Assign
from tests.e2e.test_engine import LEADERS, FakeBackend, FakeRuntime, advertise

OTHERS = [NaclSigner(bytes([40 + i]) * 32).peer_id for i in range(2)]


def sessions(rt: FakeRuntime) -> list[str]:
    """The session topics joined (each joiner also joins the session's judge topic)."""
    return [t for t in rt.joined if "/" not in t]


@pytest.fixture(autouse=True)
def _long_pending_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    """A gathering session holds its slot for the whole test (a loaded machine is slow)."""
    for module in (node.sessions.engine, node.sessions.slots):
        monkeypatch.setattr(module, "PENDING_HOLD_MS", 60_000)


def _from_leader(leader: NaclSigner, task: str, body, seq: int = 2):
    return seal(body, task=task, signer=leader, seq=seq, ts_ms=2)


async def _settle() -> None:
    with trio.fail_after(5):
        await trio.testing.wait_all_tasks_blocked()


async def _feed(engine: SessionEngine, leader: NaclSigner, task: str, body) -> None:
    await engine._driver.on_envelope(engine.sessions[task], _from_leader(leader, task, body))
    await _settle()


def test_a_full_provider_does_not_join_and_joins_a_gathering_session_once_freed() -> None:
    async def run() -> FakeRuntime:
        rt = FakeRuntime()
        engine = SessionEngine(rt, FakeBackend(), None, SessionOptions(slots=1))  # type: ignore[arg-type]
        announced = []
        engine.slots.announce = announced.append
        async with trio.open_nursery() as nursery:
            rt.nursery = nursery
            await engine._on_advertise(advertise(LEADERS[0], "task-0"))
            await engine._on_advertise(advertise(LEADERS[1], "task-1"))
            await _settle()
            assert sessions(rt) == ["task-0"], "full: the second advert is only remembered"
            assert [str(u) for u in announced] == ["1/1"]
            # task-0's leader picks two others: our slot is free at once, task-1 still gathers
            await _feed(
                engine, LEADERS[0], "task-0", Assign(tuple(OTHERS[:1]), tuple(OTHERS[1:]), "q")
            )
            assert sessions(rt) == ["task-0", "task-1"]
            assert [str(u) for u in announced] == ["1/1", "0/1", "1/1"]
            nursery.cancel_scope.cancel()
        return rt

    rt = trio.run(run)
    assert [e.kind for e in rt.published] == ["join", "join"]


def test_freed_slots_go_to_the_leaders_in_turn() -> None:
    """Leader 0 floods three adverts before leader 1 advertises three: the one slot still
    alternates between them as sessions end."""

    async def run() -> list[str]:
        rt = FakeRuntime()
        engine = SessionEngine(rt, FakeBackend(), None, SessionOptions(slots=1))  # type: ignore[arg-type]
        async with trio.open_nursery() as nursery:
            rt.nursery = nursery
            for leader, prefix in ((LEADERS[0], "a"), (LEADERS[1], "b")):
                for i in range(3):
                    await engine._on_advertise(advertise(leader, f"{prefix}{i}"))
            await _settle()
            for _ in range(5):
                (task,) = [t for t, s in engine.sessions.items() if not s.finished]
                leader = LEADERS[0] if task.startswith("a") else LEADERS[1]
                await _feed(engine, leader, task, Abort("done here"))
            nursery.cancel_scope.cancel()
        return sessions(rt)

    assert trio.run(run) == ["a0", "b0", "a1", "b1", "a2", "b2"]
