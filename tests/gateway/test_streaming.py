"""Wire format of streamed replies, early headers, keep-alives, disconnects and concurrency."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import httpx
import ollama
import openai

from node.gateway import GatewayConfig, SwarmUnavailable, serve_swarm
from tests.gateway.conftest import Served
from tests.gateway.fake import FakeSwarm, answer_for

CHAT = [{"role": "user", "content": "stream me"}]


async def test_ndjson_stream_is_one_json_object_per_line(served: Served) -> None:
    async with (
        httpx.AsyncClient(base_url=served.url) as client,
        client.stream("POST", "/api/generate", json={"model": "swarm", "prompt": "a b c"}) as reply,
    ):
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("application/x-ndjson")
        raw = b"".join([chunk async for chunk in reply.aiter_bytes()])
    assert raw.endswith(b"\n") and b"\n\n" not in raw  # no blank lines between records
    records = [json.loads(line) for line in raw.decode().splitlines()]
    assert all(r["model"] == "swarm" and "created_at" in r for r in records)
    assert [r["done"] for r in records] == [False] * (len(records) - 1) + [True]
    final = records[-1]
    assert final["done_reason"] == "stop" and final["response"] == ""
    for key in ("total_duration", "load_duration", "eval_duration", "eval_count"):
        assert isinstance(final[key], int) and final[key] >= 0, key
    assert final["total_duration"] >= final["eval_duration"]
    swarm = final["swarm"]
    assert swarm["task"] == served.fake.calls[0].task
    assert swarm["winner"].startswith("12D3KooW") and swarm["score"] == 0.87
    assert set(swarm) >= {"averages", "scores", "missing", "timings", "models", "aggregator"}
    assert "".join(r["response"] for r in records) == answer_for("a b c")


async def test_non_streaming_reply_is_exactly_one_object(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        reply = await client.post(
            "/api/chat", json={"model": "swarm", "messages": CHAT, "stream": False}
        )
    assert reply.headers["content-type"].startswith("application/json")
    body = json.loads(reply.text)  # raises if there were several records
    assert body["message"] == {"role": "assistant", "content": answer_for("stream me")}
    assert body["done"] is True and body["swarm"]["task"] == "task-1"


async def test_chat_stream_every_chunk_carries_a_message(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        reply = await client.post("/api/chat", json={"model": "swarm", "messages": CHAT})
    records = [json.loads(line) for line in reply.text.splitlines()]
    assert all(r["message"]["role"] == "assistant" for r in records)
    assert records[-1]["done"] and records[-1]["message"]["content"] == ""


async def test_sse_stream_shape(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        reply = await client.post(
            "/v1/chat/completions", json={"model": "swarm", "messages": CHAT, "stream": True}
        )
    assert reply.headers["content-type"].startswith("text/event-stream")
    events = [e for e in reply.text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e[len("data: ") :]) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["swarm"]["task"] == "task-1"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == answer_for("stream me")


async def test_headers_and_keepalives_arrive_before_the_answer(start) -> None:
    served: Served = await start(keepalive_s=0.05)
    served.fake.hold = asyncio.Event()
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{served.url}/api/generate", json={"model": "swarm", "prompt": "slow"}) as reply,
    ):
        # Headers are here while the session is still running (participants assigned).
        assert reply.status == 200
        assert not served.fake.calls[0].finished.is_set()
        keepalive = json.loads(await reply.content.readline())
        assert keepalive["response"] == "" and keepalive["done"] is False
        served.fake.hold.set()
        text = "".join([json.loads(line)["response"] async for line in reply.content])
    assert text == answer_for("slow")


async def test_sse_keepalive_is_a_comment(start) -> None:
    served: Served = await start(keepalive_s=0.05)
    served.fake.hold = asyncio.Event()
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{served.url}/v1/chat/completions",
            json={"model": "swarm", "messages": CHAT, "stream": True},
        ) as reply,
    ):
        assert reply.status == 200
        assert (await reply.content.readline()).startswith(b"data: ")  # the role chunk
        assert await reply.content.readline() == b"\n"
        assert await reply.content.readline() == b": keep-alive\n"
        served.fake.hold.set()
        rest = await reply.content.read()
    assert rest.rstrip().endswith(b"data: [DONE]")


async def test_headers_wait_at_most_head_start_before_participants(start) -> None:
    # A session stuck before assignment still gets headers after head_start_s, then its error.
    served: Served = await start(head_start_s=0.05, keepalive_s=0.05)
    gate = asyncio.Event()
    original = served.fake.run

    async def slow_join(prompt, **kwargs):
        await gate.wait()
        return await original(prompt, **kwargs)

    served.fake.run = slow_join  # type: ignore[method-assign]
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{served.url}/api/generate", json={"model": "swarm", "prompt": "x"}) as reply,
    ):
        assert reply.status == 200 and not served.fake.calls
        gate.set()
        lines = [json.loads(line) async for line in reply.content]
    assert "".join(r["response"] for r in lines) == answer_for("x")


async def test_client_disconnect_cancels_its_session(start) -> None:
    served: Served = await start()
    served.fake.hold = asyncio.Event()  # never set: only a disconnect ends this session
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as client:
        async with client.stream(
            "POST", "/api/generate", json={"model": "swarm", "prompt": "bye"}
        ) as reply:
            assert reply.status_code == 200
            await asyncio.wait_for(served.fake.calls[0].started.wait(), 10)
        # the stream is closed here: the gateway must cancel the session
        await asyncio.wait_for(served.fake.calls[0].cancelled.wait(), 10)
        # and the next request gets its own, healthy session
        served.fake.hold = None
        reply = await client.post(
            "/api/generate", json={"model": "swarm", "prompt": "next", "stream": False}
        )
        assert reply.json()["response"] == answer_for("next")


async def test_non_streaming_client_that_gives_up_cancels_its_session(start) -> None:
    served: Served = await start()
    served.fake.hold = asyncio.Event()

    async def impatient() -> None:
        async with httpx.AsyncClient(base_url=served.url) as client:
            await client.post("/v1/chat/completions", json={"model": "swarm", "messages": CHAT})

    request = asyncio.ensure_future(impatient())
    await asyncio.wait_for(served.fake.call_started.wait(), 10)
    request.cancel()
    await asyncio.wait({request})
    await asyncio.wait_for(served.fake.calls[0].cancelled.wait(), 10)


async def test_five_concurrent_requests_get_their_own_sessions(start) -> None:
    served: Served = await start()
    served.fake.hold = asyncio.Event()  # all five are in flight at the same time
    client = ollama.AsyncClient(host=served.url)
    oai = openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key="x", max_retries=0)

    async def ask_ollama(i: int) -> tuple[str, str, str]:
        reply = await client.generate(model="swarm", prompt=f"question {i}", stream=False)
        return f"question {i}", reply.response or "", ""

    async def ask_openai(i: int) -> tuple[str, str, str]:
        stream = await oai.chat.completions.create(
            model="swarm", messages=[{"role": "user", "content": f"question {i}"}], stream=True
        )
        text, task = "", ""
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            task = (chunk.model_extra or {}).get("swarm", {}).get("task", task)
        return f"question {i}", text, task

    jobs = [asyncio.ensure_future(ask_ollama(i)) for i in range(3)]
    jobs += [asyncio.ensure_future(ask_openai(i)) for i in range(3, 5)]
    await served.fake.wait_calls(5)
    assert not any(job.done() for job in jobs)
    served.fake.hold.set()
    results = await asyncio.gather(*jobs)
    for prompt, text, _task in results:
        assert text == answer_for(prompt)  # each got the answer to its own prompt
    assert len({c.task for c in served.fake.calls}) == 5
    assert {task for *_, task in results if task} <= {c.task for c in served.fake.calls}


async def test_streamed_not_enough_providers_is_503_within_the_join_window(start) -> None:
    # The session gives up at its join deadline, later than head_start_s: the headers must wait
    # for the join window, so a streaming client still gets a real 503.
    served: Served = await start(head_start_s=0.05)
    served.fake.join_window_s = lambda timeout_s: 5.0  # type: ignore[attr-defined]
    original = served.fake.run

    async def slow_abort(prompt, **kwargs):
        joined = asyncio.Event()
        asyncio.get_running_loop().call_later(0.3, joined.set)  # the engine's join deadline
        await joined.wait()
        served.fake.fail = SwarmUnavailable("not enough participants: 1 joined, need 2")
        return await original(prompt, **kwargs)

    served.fake.run = slow_abort  # type: ignore[method-assign]
    async with httpx.AsyncClient(base_url=served.url) as client:
        reply = await client.post("/api/chat", json={"model": "swarm", "messages": CHAT})
    assert reply.status_code == 503
    assert "not enough participants" in reply.json()["error"]


async def test_closing_the_gateway_cancels_sessions_in_flight() -> None:
    fake = FakeSwarm()
    fake.hold = asyncio.Event()  # never set: only the shutdown ends this session
    handle = await serve_swarm(fake, "127.0.0.1:0", GatewayConfig())
    async with httpx.AsyncClient(base_url=handle.url, timeout=30) as client:
        request = asyncio.ensure_future(
            client.post("/api/generate", json={"model": "swarm", "prompt": "x", "stream": False})
        )
        await asyncio.wait_for(fake.call_started.wait(), 10)
        await asyncio.wait_for(handle.close(), 10)
        await asyncio.wait_for(fake.calls[0].cancelled.wait(), 10)
        reply = await asyncio.wait_for(request, 10)
    assert reply.status_code == 503 and "shutting down" in reply.json()["error"]
