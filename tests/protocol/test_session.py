"""Session machines: one test per rule, driven through the in-memory Swarm."""

from __future__ import annotations

import random

from protocol.messages import MESH_TOPIC, Advertise
from protocol.session import (
    LeaderSession,
    Publish,
    Role,
    Stage,
    StageChanged,
    Subscribe,
)
from tests.protocol.helpers import TASK, Swarm
from tests.protocol.strategies import SIGNERS

ADV = Advertise(prompt="What is 2+2?", join_ms=1_000, exec_ms=2_000, verify_ms=3_000)


def test_happy_path_pipe_mode() -> None:
    s = Swarm(providers=4, auto_assign_at=4, advertise=ADV)
    s.settle()
    assert s.leader.stage == Stage.DONE
    result = s.leader.result
    assert result is not None and result.winner in s.leader.executors
    assert s.now == 0  # finished early: nothing waited for a deadline
    for p in s.participants.values():
        assert p.stage == Stage.DONE and p.result == result
    assert all(not s.rejected(n) for n in s.signers)
    roles = sorted(p.role for p in s.participants.values())
    assert roles == [Role.EXECUTOR, Role.EXECUTOR, Role.VERIFIER, Role.VERIFIER]


def test_leader_start_effects() -> None:
    leader = LeaderSession(TASK, SIGNERS[0].peer_id, ADV, rng=random.Random(0))
    effects = leader.start(100)
    assert effects == [
        Subscribe(TASK),
        Publish(MESH_TOPIC, TASK, ADV),
        StageChanged(TASK, Stage.ADVERTISE, 1_100),
    ]
    assert leader.next_deadline() == 1_100
