"""Capacity through the gateway (issue 14): 20 requests at once from the official ollama and
openai clients against 4 ``sim`` providers behind ``rnet serve`` all succeed, because requests
beyond the providers' free slots wait in the gateway's queue instead of failing.

Real processes on loopback; one swarm for the module; waits are conditions, never sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import ollama
import openai
import pytest

from tests.gateway.test_swarm_e2e import start_gateway_node
from tests.node.swarm import NodeProc, Swarm

pytestmark = pytest.mark.slow

PROVIDERS = 4
PER_SESSION = 3
SLOTS = 2  # per provider: 4 x 2 = 8 slots, two sessions of 3 at once; 20 requests must queue
AT_ONCE = 20


@dataclass
class Capacity:
    swarm: Swarm
    providers: list[NodeProc]
    gateway: NodeProc
    url: str


def _slots_seen(gateway: NodeProc) -> dict[str, int]:
    """peer -> slots it announces, from the gateway node's peer_info events."""
    seen: dict[str, int] = {}
    for e in gateway.find_all(lambda e: e.get("event") == "peer_info"):
        if e.get("slots"):
            seen[e["peer_id"]] = e["slots"]
    return seen


@pytest.fixture(scope="module")
def capacity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Capacity]:
    with Swarm(tmp_path_factory.mktemp("capacity")) as swarm:
        swarm.start_bootstrap(timeout=60)
        flags = ["--slots", str(SLOTS), "--sim-gen-ms", "150", "--sim-judge-ms", "50"]
        providers = swarm.start_providers(PROVIDERS, flags, timeout=60)
        gateway, url = start_gateway_node(
            swarm,
            "gateway",
            *("--providers", str(PER_SESSION), "--timeout", "60", "--join-deadline", "15"),
            *("--exec-deadline", "20", "--verify-deadline", "20"),
        )
        ids = {p.peer_id for p in providers}
        swarm.wait_until(
            lambda: {p for p, n in _slots_seen(gateway).items() if n == SLOTS} >= ids,
            60,
            "every provider's slots in the gateway's presence view",
        )
        yield Capacity(swarm, providers, gateway, url)


async def test_twenty_requests_at_once_through_the_ollama_client_all_succeed(
    capacity: Capacity,
) -> None:
    client = ollama.AsyncClient(host=capacity.url, timeout=120)

    async def ask(i: int) -> str:
        if i % 2:  # half of them streamed, as chat UIs do
            parts = [
                p async for p in await client.generate(model="swarm", prompt=f"q{i}?", stream=True)
            ]
            assert parts[-1].done
            return "".join(p.response or "" for p in parts)
        reply = await client.generate(model="swarm", prompt=f"q{i}?", stream=False)
        return reply.response

    answers = await asyncio.gather(*(ask(i) for i in range(AT_ONCE)))
    assert all(answers) and len(answers) == AT_ONCE


async def test_twenty_requests_at_once_through_the_openai_client_all_succeed(
    capacity: Capacity,
) -> None:
    # No retries: each of the 20 must succeed the first time (the SDK would retry a 503).
    client = openai.AsyncOpenAI(
        base_url=f"{capacity.url}/v1", api_key="unused", max_retries=0, timeout=120
    )

    async def ask(i: int) -> str:
        reply = await client.chat.completions.create(
            model="swarm", messages=[{"role": "user", "content": f"question {i}?"}]
        )
        return reply.choices[0].message.content or ""

    try:
        answers = await asyncio.gather(*(ask(i) for i in range(AT_ONCE)))
    finally:
        await client.close()
    assert all(answers) and len(answers) == AT_ONCE
    results = capacity.gateway.find_all(lambda e: e.get("event") == "result" and e.get("winner"))
    assert len(results) >= 2 * AT_ONCE  # both tests' sessions, every one with a winner


def test_presence_shows_the_slots_in_use_and_free_again_once_idle(capacity: Capacity) -> None:
    """After the bursts above, the gateway's view (peer_info, from the providers' presences)
    saw slots in use, and shows every provider idle again once the sessions are over."""
    ids = {p.peer_id for p in capacity.providers}
    infos = [
        e
        for e in capacity.gateway.find_all(lambda e: e.get("event") == "peer_info")
        if e.get("peer_id") in ids and e.get("slots")
    ]
    assert any(e.get("slots_used", 0) > 0 for e in infos), "no provider announced a busy slot"

    def idle() -> bool:
        last: dict[str, int] = {}
        for e in capacity.gateway.find_all(lambda e: e.get("event") == "peer_info"):
            if e.get("peer_id") in ids and e.get("slots"):
                last[e["peer_id"]] = e.get("slots_used", 0)
        return set(last) == ids and not any(last.values())

    capacity.swarm.wait_until(idle, 30, "every provider announcing 0 slots in use")
