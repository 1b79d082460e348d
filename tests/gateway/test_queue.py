"""The gateway queues like Ollama: requests beyond what can run wait (FIFO), a full queue is a
503 with Retry-After, and a client that leaves while waiting leaves the queue."""

from __future__ import annotations

import asyncio

import httpx

from tests.gateway.conftest import Served
from tests.gateway.fake import FakeSwarm, answer_for


def _request(prompt: str) -> dict:
    return {"model": "swarm", "prompt": prompt, "stream": False}


async def test_requests_beyond_the_sessions_in_flight_wait_and_all_succeed(start) -> None:
    served: Served = await start(max_in_flight=2)
    served.fake.hold = asyncio.Event()
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        replies = [
            asyncio.ensure_future(client.post("/api/generate", json=_request(f"q{i}")))
            for i in range(6)
        ]
        await served.fake.wait_calls(2)
        await served.fake.wait_queue(lambda r: r[1] == 4)
        assert len(served.fake.calls) == 2  # the others wait, none failed
        served.fake.hold.set()
        done = await asyncio.gather(*replies)
    assert [r.status_code for r in done] == [200] * 6
    assert [r.json()["response"] for r in done] == [answer_for(f"q{i}") for i in range(6)]
    # first come, first served
    assert [c.prompt for c in served.fake.calls] == [f"q{i}" for i in range(6)]


async def test_a_full_queue_is_503_with_retry_after(start) -> None:
    served: Served = await start(max_in_flight=1, max_queue=1)
    served.fake.hold = asyncio.Event()
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        running = asyncio.ensure_future(client.post("/api/generate", json=_request("a")))
        await served.fake.wait_calls(1)
        waiting = asyncio.ensure_future(client.post("/api/generate", json=_request("b")))
        await served.fake.wait_queue(lambda r: r[1] == 1)
        refused = await client.post("/v1/completions", json={"model": "swarm", "prompt": "c"})
        assert refused.status_code == 503
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["error"]["code"] == "busy"
        assert "queue is full" in refused.json()["error"]["message"]
        served.fake.hold.set()
        assert [r.status_code for r in await asyncio.gather(running, waiting)] == [200, 200]


async def test_a_client_that_leaves_while_waiting_leaves_the_queue(start) -> None:
    served: Served = await start(max_in_flight=1)
    served.fake.hold = asyncio.Event()
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        running = asyncio.ensure_future(client.post("/api/generate", json=_request("a")))
        await served.fake.wait_calls(1)
        async with httpx.AsyncClient(base_url=served.url, timeout=30) as leaving:
            gone = asyncio.ensure_future(leaving.post("/api/generate", json=_request("gone")))
            await served.fake.wait_queue(lambda r: r[1] == 1)
            gone.cancel()  # the client hangs up while queued
        await served.fake.wait_queue(lambda r: r[1] == 0)
        served.fake.hold.set()
        assert (await running).status_code == 200
        reply = await client.post("/api/generate", json=_request("after"))
        assert reply.status_code == 200
    # the request that left never became a session
    assert [c.prompt for c in served.fake.calls] == ["a", "after"]


class _SlotsSwarm(FakeSwarm):
    """A fake swarm that reports its capacity the way the node adapter does."""

    def __init__(self, sessions_at_once: int) -> None:
        super().__init__()
        self.sessions_at_once = sessions_at_once
        self.asked: list[int] = []

    def capacity(self, providers: int) -> int:
        self.asked.append(providers)
        return self.sessions_at_once


async def test_sessions_at_once_follow_the_swarms_capacity(start) -> None:
    fake = _SlotsSwarm(sessions_at_once=3)
    served: Served = await start(fake, max_in_flight=16, providers=3)
    fake.hold = asyncio.Event()
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        replies = [
            asyncio.ensure_future(client.post("/api/generate", json=_request(f"q{i}")))
            for i in range(5)
        ]
        await fake.wait_calls(3)
        await fake.wait_queue(lambda r: r[1] == 2)
        assert fake.asked and set(fake.asked) == {3}
        fake.hold.set()
        assert [r.status_code for r in await asyncio.gather(*replies)] == [200] * 5


async def test_the_queue_reports_running_and_waiting_requests(start) -> None:
    fake = FakeSwarm()
    served: Served = await start(fake, max_in_flight=1)
    fake.hold = asyncio.Event()
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        replies = [
            asyncio.ensure_future(client.post("/api/generate", json=_request(f"q{i}")))
            for i in range(3)
        ]
        await fake.wait_queue(lambda r: r == (1, 2, 1))
        fake.hold.set()
        assert [r.status_code for r in await asyncio.gather(*replies)] == [200] * 3
    await fake.wait_queue(lambda r: r == (0, 0, 1))
