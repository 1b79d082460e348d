"""RuntimeSwarm.capacity: how many sessions the gateway runs at once from the slots providers
announce (the rest of its requests wait in the queue)."""

from __future__ import annotations

from dataclasses import dataclass, field

from node.gateway.adapter import RuntimeSwarm


@dataclass
class Peer:
    peer_id: str
    slots: int
    model: str = "sim/honest"
    capabilities: tuple[str, ...] = ()
    status: str = ""


@dataclass
class Directory:
    peers: list[Peer] = field(default_factory=list)
    peer_id_str: str = "gateway"

    def provider_peers(self) -> list[Peer]:
        return self.peers


def swarm(*slots: int) -> RuntimeSwarm:
    return RuntimeSwarm(Directory([Peer(f"p{i}", s) for i, s in enumerate(slots)]), None)


def test_sessions_at_once_are_the_slots_over_a_sessions_busiest_moment() -> None:
    # 3 per session: 1 executor answers, then 2 verifiers judge: at most 2 slots at once
    assert swarm(4, 4, 4, 4).capacity(3) == 8
    assert swarm(1, 1, 1).capacity(3) == 1  # three Ollama providers, one slot each
    assert swarm(4, 4, 4, 4).capacity(4) == 8  # 2 answer, then 2 judge
    assert swarm(1, 1, 1, 1, 1).capacity(5) == 1  # 2 answer, then 3 judge: 5 // 3


def test_too_few_providers_run_one_session_at_a_time() -> None:
    assert swarm(8, 8).capacity(3) == 1
    assert swarm().capacity(3) == 1


def test_a_provider_that_announces_no_slots_counts_as_one() -> None:
    assert swarm(0, 0, 0).capacity(3) == 1
