"""Raw requests for every error path: each API's own status and shape, and the server keeps serving."""

from __future__ import annotations

import asyncio
import json

import httpx
import ollama
import openai
import pytest

from node.gateway import SwarmUnavailable
from tests.gateway.conftest import Served
from tests.gateway.fake import answer_for

GOOD_OLLAMA = {"model": "swarm", "prompt": "still alive?", "stream": False}


async def still_serving(client: httpx.AsyncClient) -> None:
    reply = await client.post("/api/generate", json=GOOD_OLLAMA)
    assert reply.status_code == 200
    assert reply.json()["response"] == answer_for("still alive?")


def ollama_error(reply: httpx.Response, status: int) -> str:
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    return body["error"]


def openai_error(reply: httpx.Response, status: int) -> dict:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert {"type", "param", "code"} <= set(error)
    return error


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("/api/generate", b"{not json", "invalid JSON"),
        ("/api/generate", b"", "empty"),
        ("/api/generate", b"[1, 2]", "JSON object"),
        ("/api/generate", b'{"prompt": "x"}', "'model' is required"),
        ("/api/generate", b'{"model": 7, "prompt": "x"}', "'model' must be a string"),
        ("/api/generate", b'{"model": "swarm", "prompt": "  "}', "blank"),
        ("/api/generate", b'{"model": "swarm", "prompt": 5}', "'prompt' must be a string"),
        ("/api/generate", b'{"model": "swarm", "prompt": "x", "stream": "yes"}', "'stream'"),
        ("/api/generate", b'{"model": "swarm", "prompt": "x", "images": ["aGk="]}', "images"),
        ("/api/chat", b'{"model": "swarm", "messages": "hi"}', "'messages' is required"),
        ("/api/chat", b'{"model": "swarm", "messages": [{"role": "wizard"}]}', "role"),
        ("/api/chat", b'{"model": "swarm", "messages": ["hi"]}', "messages[0]"),
        (
            "/api/chat",
            b'{"model": "swarm", "messages": [{"role": "system", "content": "x"}]}',
            "user message",
        ),
        ("/api/show", b"{}", "'model' is required"),
    ],
)
async def test_ollama_bad_requests_are_400(
    served: Served, path: str, body: bytes, needle: str
) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        reply = await client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert needle in ollama_error(reply, 400)
        await still_serving(client)
    assert len(served.fake.calls) == 1  # only the good request reached the swarm


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{oops", "invalid JSON"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "'model' is required"),
        (b'{"model": "swarm"}', "'messages' is required"),
        (b'{"model": "swarm", "messages": [{"role": "user", "content": 3}]}', "content"),
        (
            b'{"model": "swarm", "messages": [{"role": "user", "content": "x"}], "n": 2}',
            "'n' must be 1",
        ),
        (
            b'{"model": "swarm", "messages": [{"role": "user", "content": '
            b'[{"type": "image_url", "image_url": {"url": "x"}}]}]}',
            "only text",
        ),
    ],
)
async def test_openai_bad_requests_are_400(served: Served, body: bytes, needle: str) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        reply = await client.post("/v1/chat/completions", content=body)
        error = openai_error(reply, 400)
        assert needle in error["message"]
        assert error["type"] == "invalid_request_error"
        await still_serving(client)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/generate", {"model": "swarm"}),
        ("/api/generate", {"model": "swarm", "prompt": "", "stream": False}),
        ("/api/chat", {"model": "swarm"}),
        ("/api/chat", {"model": "swarm", "messages": [], "stream": False}),
    ],
)
async def test_ollama_load_requests_answer_without_a_session(
    served: Served, path: str, body: dict
) -> None:
    # Ollama answers "no prompt" with a load reply; clients use it to preload a model.
    async with httpx.AsyncClient(base_url=served.url) as client:
        reply = await client.post(path, json=body)
    assert reply.status_code == 200
    record = json.loads(reply.text)
    assert record["done"] is True and record["done_reason"] == "load"
    assert record["model"] == "swarm"
    assert not served.fake.calls


async def test_unknown_model_is_404_in_both_shapes(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        reply = await client.post("/api/generate", json={"model": "gpt-9", "prompt": "x"})
        assert "gpt-9" in ollama_error(reply, 404)
        reply = await client.post("/api/show", json={"model": "gpt-9"})
        ollama_error(reply, 404)
        reply = await client.post(
            "/v1/chat/completions",
            json={"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]},
        )
        assert openai_error(reply, 404)["code"] == "model_not_found"
        openai_error(await client.get("/v1/models/gpt-9"), 404)
        await still_serving(client)
    with pytest.raises(ollama.ResponseError) as caught:
        await ollama.AsyncClient(host=served.url).generate(model="gpt-9", prompt="x", stream=False)
    assert caught.value.status_code == 404
    oai = openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        await oai.chat.completions.create(
            model="gpt-9", messages=[{"role": "user", "content": "x"}]
        )


async def test_unknown_endpoint_and_wrong_method(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        assert "no such endpoint" in ollama_error(await client.get("/api/nothing"), 404)
        openai_error(await client.get("/v1/nothing"), 404)
        assert "not allowed" in ollama_error(await client.get("/api/generate"), 405)
        await still_serving(client)


@pytest.mark.parametrize("stream", [False, True])
async def test_not_enough_providers_is_503_with_reason(start, stream: bool) -> None:
    served: Served = await start()
    served.fake.fail = SwarmUnavailable(
        "not enough providers: 1 joined, 3 wanted", "not_enough_providers"
    )
    async with httpx.AsyncClient(base_url=served.url) as client:
        reply = await client.post(
            "/api/generate", json={"model": "swarm", "prompt": "x", "stream": stream}
        )
        assert "not enough providers" in ollama_error(reply, 503)
        reply = await client.post(
            "/v1/chat/completions",
            json={
                "model": "swarm",
                "messages": [{"role": "user", "content": "x"}],
                "stream": stream,
            },
        )
        error = openai_error(reply, 503)
        assert error["code"] == "not_enough_providers"
        served.fake.fail = None
        await still_serving(client)
    served.fake.fail = SwarmUnavailable("not enough providers: 0 joined, 3 wanted")
    with pytest.raises(ollama.ResponseError) as caught:
        await ollama.AsyncClient(host=served.url).generate(model="swarm", prompt="x", stream=False)
    assert caught.value.status_code == 503 and "not enough providers" in caught.value.error
    oai = openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.APIStatusError) as raised:
        await oai.chat.completions.create(
            model="swarm", messages=[{"role": "user", "content": "x"}]
        )
    assert raised.value.status_code == 503


async def test_empty_answer_is_503(start) -> None:
    served: Served = await start()
    served.fake.text = ""
    async with httpx.AsyncClient(base_url=served.url) as client:
        reply = await client.post("/api/generate", json=GOOD_OLLAMA)
        assert "empty" in ollama_error(reply, 503)


async def test_failure_after_headers_is_reported_in_stream(start) -> None:
    # The session has participants (headers sent), then its deadline passes with no answer.
    served: Served = await start()
    served.fake.fail_after_assign = SwarmUnavailable(
        "no executor answered by the deadline", "deadline"
    )
    client = ollama.AsyncClient(host=served.url)
    with pytest.raises(ollama.ResponseError) as caught:
        async for _part in await client.generate(model="swarm", prompt="x", stream=True):
            pass
    assert "no executor answered" in caught.value.error
    oai = openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.APIError) as raised:
        stream = await oai.chat.completions.create(
            model="swarm", messages=[{"role": "user", "content": "x"}], stream=True
        )
        async for _chunk in stream:
            pass
    assert "no executor answered" in raised.value.message
    async with httpx.AsyncClient(base_url=served.url) as raw:
        served.fake.fail_after_assign = None
        await still_serving(raw)


async def test_gateway_deadline_ends_a_hung_session(start) -> None:
    served: Served = await start(timeout_s=0.2, grace_s=0.1)
    served.fake.hang = True
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as client:
        reply = await client.post("/api/generate", json=GOOD_OLLAMA)
        assert "deadline" in ollama_error(reply, 503)
        assert served.fake.calls[0].cancelled.is_set()  # the hung session was cancelled


@pytest.mark.parametrize("path", ["/api/generate", "/v1/chat/completions"])
async def test_body_over_limit_is_413(start, path: str) -> None:
    served: Served = await start(max_body_bytes=4096)
    big = {"model": "swarm", "prompt": "x" * 10_000, "messages": [{"role": "user", "content": "x"}]}
    async with httpx.AsyncClient(base_url=served.url) as client:
        reply = await client.post(path, json=big)
        assert reply.status_code == 413
        message = reply.json()["error"]
        message = message["message"] if isinstance(message, dict) else message
        assert "too large" in message and "4096" in message

        # Without Content-Length (chunked upload) the limit holds as well.
        async def chunks():
            for _ in range(10):
                yield b" " * 1000

        reply = await client.post(path, content=chunks())
        assert reply.status_code == 413
        await still_serving(client)
    assert not served.fake.calls[:-1]  # nothing but the good request reached the swarm


async def test_prompt_over_limit_is_413(start) -> None:
    served: Served = await start(max_prompt_chars=100)
    async with httpx.AsyncClient(base_url=served.url) as client:
        reply = await client.post("/api/generate", json={**GOOD_OLLAMA, "prompt": "y" * 101})
        assert "prompt too long" in ollama_error(reply, 413)


async def test_session_bug_is_500_and_server_survives(start) -> None:
    served: Served = await start()

    async def broken(*_args, **_kwargs):
        raise RuntimeError("engine bug")

    served.fake.run = broken  # type: ignore[method-assign]
    async with httpx.AsyncClient(base_url=served.url) as client:
        reply = await client.post("/api/generate", json=GOOD_OLLAMA)
        assert "internal error" in ollama_error(reply, 500)
        del served.fake.run
        await still_serving(client)


async def test_session_cancelled_by_the_node_is_503(start) -> None:
    # The node's side stopped the session (e.g. its engine went down): not a hang, not a 500.
    served: Served = await start()

    async def cancelled(*_args, **_kwargs):
        raise asyncio.CancelledError

    served.fake.run = cancelled  # type: ignore[method-assign]
    async with httpx.AsyncClient(base_url=served.url) as client:
        reply = await client.post("/api/generate", json=GOOD_OLLAMA)
        assert "cancelled on this node" in ollama_error(reply, 503)
        del served.fake.run
        await still_serving(client)


async def test_session_bug_after_headers_is_reported_in_stream(start) -> None:
    served: Served = await start()
    served.fake.hold = asyncio.Event()
    served.fake.fail_after_assign = RuntimeError("engine bug")  # type: ignore[assignment]
    body = {"model": "swarm", "messages": [{"role": "user", "content": "x"}], "stream": True}
    async with (
        httpx.AsyncClient(base_url=served.url) as client,
        client.stream("POST", "/v1/chat/completions", json=body) as reply,
    ):
        assert reply.status_code == 200  # headers out: the bug comes later
        served.fake.hold.set()
        text = (await reply.aread()).decode()
    events = [e for e in text.split("\n\n") if e]
    error = json.loads(events[-2].removeprefix("data: "))["error"]
    assert error["code"] == "internal" and "internal error" in error["message"]
    assert events[-1] == "data: [DONE]"
    served.fake.hold = None
    served.fake.fail_after_assign = None
    async with httpx.AsyncClient(base_url=served.url) as client:
        await still_serving(client)


@pytest.mark.parametrize(
    "body",
    [
        {"model": "swarm"},
        {"model": "swarm", "prompt": ["a", "b"]},
        {"model": "swarm", "prompt": 3},
        {"model": "swarm", "prompt": "x", "n": 3},
    ],
)
async def test_openai_legacy_completions_bad_requests_are_400(served: Served, body: dict) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        openai_error(await client.post("/v1/completions", json=body), 400)
    assert not served.fake.calls
