"""The Ollama test double honours the wire details the official client depends on (ARCH §11)."""

from __future__ import annotations

import json

import httpx
import ollama
import pytest

from tests.ollama_double import OllamaDouble, Reply, spawn_double

from .conftest import MODEL


async def _raw_post(url: str, path: str, body: dict) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url) as client:
        return await client.post(path, json=body)


async def test_streaming_is_the_default_ndjson_without_blank_lines(double: OllamaDouble) -> None:
    response = await _raw_post(
        double.url, "/api/chat", {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = response.text.split("\n")
    assert lines[-1] == ""  # every record ends with a newline ...
    records = [json.loads(line) for line in lines[:-1]]  # ... and no line is blank
    assert len(records) > 2
    assert all("message" in r for r in records), "every chat chunk carries message, the last too"
    assert [r["done"] for r in records] == [False] * (len(records) - 1) + [True]
    assert records[-1]["message"]["content"] == ""
    assert "".join(r["message"]["content"] for r in records) == f"{MODEL} answers: hi"


async def test_non_streaming_reply_is_one_json_object(double: OllamaDouble) -> None:
    response = await _raw_post(
        double.url,
        "/api/generate",
        {"model": MODEL, "prompt": "hi", "stream": False},
    )
    record = json.loads(response.text)  # raises if there were several records
    assert record["done"] is True
    assert record["response"] == f"{MODEL} answers: hi"
    assert record["eval_count"] > 0


async def test_tags_show_version_and_unknown_model(double: OllamaDouble) -> None:
    async with ollama.AsyncClient(host=double.url) as client:
        await _tags_show_version(double, client)


async def _tags_show_version(double: OllamaDouble, client: ollama.AsyncClient) -> None:
    listing = await client.list()
    assert [m.model for m in listing.models] == [MODEL]
    async with httpx.AsyncClient(base_url=double.url) as raw_client:
        raw = (await raw_client.get("/api/tags")).json()
        version = (await raw_client.get("/api/version")).json()
    assert raw["models"][0]["name"] == raw["models"][0]["model"] == MODEL
    assert version["version"]
    shown = await client.show(MODEL)
    assert shown.modelinfo and "general.architecture" in shown.modelinfo
    with pytest.raises(ollama.ResponseError) as err:
        await client.chat(model="nope:1b", messages=[{"role": "user", "content": "x"}])
    assert err.value.status_code == 404
    assert "not found" in err.value.error


async def test_pull_adds_a_pullable_model_and_fails_for_unknown() -> None:
    async with (
        OllamaDouble(models=[], pullable=["tiny:1b"]) as double,
        ollama.AsyncClient(host=double.url) as client,
    ):
        progress = [p.status async for p in await client.pull("tiny:1b", stream=True)]
        assert progress[-1] == "success"
        assert [m.model for m in (await client.list()).models] == ["tiny:1b"]
        with pytest.raises(ollama.ResponseError):
            await client.pull("missing:7b")


async def test_scripted_replies_per_model_and_kind(double: OllamaDouble) -> None:
    double.add_model("other:1b", answer="other says {prompt}")
    double.script(MODEL, "first", "second")
    double.script(MODEL, '{"reason": "r", "score": 0.3}', kind="judge")

    async def ask(model: str, **kw: object) -> str:
        async with ollama.AsyncClient(host=double.url) as client:
            r = await client.chat(model=model, messages=[{"role": "user", "content": "q"}], **kw)
        return r.message.content or ""

    assert await ask(MODEL) == "first"
    assert await ask(MODEL, format={"type": "object"}) == '{"reason": "r", "score": 0.3}'
    assert await ask(MODEL) == "second"
    assert await ask(MODEL) == f"{MODEL} answers: q"  # queue empty: the model's default
    assert await ask("other:1b") == "other says q"
    assert len(double.requests_to("/api/chat")) == 5


async def test_mid_stream_error_and_dropped_connection(double: OllamaDouble) -> None:
    async with ollama.AsyncClient(host=double.url) as client:
        await _mid_stream(double, client)


async def _mid_stream(double: OllamaDouble, client: ollama.AsyncClient) -> None:
    double.script(MODEL, Reply(text="one two three", error_after=1, error="model crashed"))
    seen: list[str] = []
    with pytest.raises(ollama.ResponseError, match="model crashed"):
        async for part in await client.chat(model=MODEL, messages=[], stream=True):
            seen.append(part.message.content or "")
    assert seen == ["one "]
    double.script(MODEL, Reply(text="one two three", drop_after=2))
    with pytest.raises(httpx.RemoteProtocolError):
        async for _ in await client.chat(model=MODEL, messages=[], stream=True):
            pass


def test_in_thread_mode_serves_a_sync_client() -> None:
    with (
        OllamaDouble(models=["m:1b"]).in_thread() as double,
        ollama.Client(host=double.url) as client,
    ):
        reply = client.chat(model="m:1b", messages=[{"role": "user", "content": "yo"}])
        assert reply.message.content == "m:1b answers: yo"


def test_process_mode_with_control_endpoints() -> None:
    with (
        spawn_double("--model", "a:1b", "--model", "b:1b", "--answer", "hello from {model}") as url,
        ollama.Client(host=url) as client,
    ):
        assert {m.model for m in client.list().models} == {"a:1b", "b:1b"}
        assert client.chat(model="b:1b", messages=[]).message.content == "hello from b:1b"
        httpx.post(
            f"{url}/_double/script", json={"model": "a:1b", "reply": {"text": "scripted"}}
        ).raise_for_status()
        assert client.chat(model="a:1b", messages=[]).message.content == "scripted"
        recorded = httpx.get(f"{url}/_double/requests").json()
        assert [r["body"]["model"] for r in recorded] == ["b:1b", "a:1b"]
