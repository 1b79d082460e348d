"""Gateway fidelity (issue 17): every parameter real clients send is honoured or clearly refused.

Official ``ollama`` and ``openai`` clients against a real gateway in front of the fake swarm,
which shapes its winner's answer as an honest executor would (tool call, JSON, cuts).
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpx
import ollama
import openai
import pytest

from node.gateway import SwarmUnavailable
from node.gateway.cors import origin_allowed
from node.gateway_settings import origins_from
from protocol.structured import format_problem
from tests.gateway.conftest import Served
from tests.gateway.fake import FakeSwarm, answer_for
from tests.tool_specs import WEATHER

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def oai(served: Served) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0)


# --- 1. generation options -------------------------------------------------------------------
async def test_ollama_options_travel_and_length_is_reported(served: Served) -> None:
    client = ollama.AsyncClient(host=served.url)
    options = {"num_predict": 3, "stop": ["->"], "temperature": 0.2, "seed": 7, "top_p": 0.9}
    reply = await client.generate(model="swarm", prompt="tell", options=options, stream=False)
    sent = served.fake.calls[0].generation.options
    assert (sent.num_predict, sent.stop, sent.temperature, sent.seed, sent.top_p) == (
        3,
        ("->",),
        0.2,
        7,
        0.9,
    )
    assert reply.done_reason == "length" and reply.eval_count == 3
    assert reply.response == "The swarm says:"  # cut at the stop, then to three words
    chunks = [c async for c in await client.chat(
        model="swarm", messages=[{"role": "user", "content": "x"}], options={"num_predict": 2},
        stream=True,
    )]  # fmt: skip
    assert chunks[-1].done_reason == "length"
    assert "".join(c.message.content for c in chunks) == "The swarm"


async def test_openai_max_tokens_gives_finish_reason_length(served: Served) -> None:
    client = oai(served)
    done = await client.chat.completions.create(
        model="swarm", messages=[{"role": "user", "content": "q"}], max_tokens=3, seed=1
    )
    assert done.choices[0].finish_reason == "length"
    assert (
        done.usage.completion_tokens <= 3 and done.choices[0].message.content == "The swarm says:"
    )
    assert served.fake.calls[-1].generation.options.seed == 1
    stream = await client.chat.completions.create(
        model="swarm",
        messages=[{"role": "user", "content": "q"}],
        max_completion_tokens=2,
        stop="\n",
        stream=True,
    )
    chunks = [c async for c in stream]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert served.fake.calls[-1].generation.options.stop == ("\n",)
    legacy = await client.completions.create(model="swarm", prompt="q", max_tokens=1)
    assert legacy.choices[0].finish_reason == "length" and legacy.choices[0].text == "The"
    full = await client.chat.completions.create(
        model="swarm", messages=[{"role": "user", "content": "q"}]
    )
    assert full.choices[0].finish_reason == "stop"
    assert full.choices[0].message.content == answer_for("q")


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"max_tokens": 0}, "at least 1"),
        ({"max_tokens": "3"}, "integer"),
        ({"temperature": -1}, "temperature"),
        ({"top_p": 2}, "top_p"),
        ({"stop": ["a"] * 9}, "stop"),
        ({"stop": 5}, "stop"),
        ({"logprobs": True}, "logprobs"),
        ({"response_format": {"type": "xml"}}, "response_format"),
        ({"functions": [{"name": "f"}]}, "tools"),
        ({"tools": [{"type": "retrieval"}]}, "tools"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "x"}}},
         "tool_choice"),
    ],
)  # fmt: skip
async def test_openai_bad_generation_fields_are_400(served: Served, extra, words) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await oai(served).chat.completions.create(
            model="swarm", messages=[{"role": "user", "content": "q"}], **extra
        )
    assert words in info.value.body["message"]
    assert not served.fake.calls


async def test_ollama_refusals(served: Served) -> None:
    client = ollama.AsyncClient(host=served.url)
    with pytest.raises(ollama.ResponseError) as info:
        await client.generate(model="swarm", prompt="x", options={"num_predict": 0})
    assert info.value.status_code == 400 and "at least 1" in info.value.error
    with pytest.raises(ollama.ResponseError) as info:
        await client.generate(model="swarm", prompt="x", think=True)
    assert info.value.status_code == 400 and "thinking" in info.value.error
    async with httpx.AsyncClient(base_url=served.url) as http:  # the client refuses these itself
        for extra, words in (({"format": "xml"}, "format"), ({"suffix": "end"}, "insert")):
            reply = await http.post(
                "/api/generate", json={"model": "swarm", "prompt": "x", **extra}
            )
            assert reply.status_code == 400 and words in reply.json()["error"], extra
    assert not served.fake.calls


async def test_accepted_but_not_applied_fields_are_named(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as http:
        reply = await http.post(
            "/api/generate",
            json={
                "model": "swarm",
                "prompt": "x",
                "stream": False,
                "options": {"num_ctx": 4096, "top_k": 20, "seed": 3, "mirostat": None},
                "keep_alive": "5m",
            },
        )
        assert reply.headers["X-Rnet-Ignored"] == "options.num_ctx, options.top_k"
        assert reply.json()["swarm"]["ignored"] == ["options.num_ctx", "options.top_k"]
        reply = await http.post(
            "/v1/chat/completions",
            json={
                "model": "swarm",
                "messages": [{"role": "user", "content": "x"}],
                "presence_penalty": 0.5,
                "frequency_penalty": 0,
                "user": "me",
            },
        )
        assert reply.json()["swarm"]["ignored"] == ["presence_penalty"]


# --- 2. structured output --------------------------------------------------------------------
async def test_structured_output_both_apis(served: Served) -> None:
    client = ollama.AsyncClient(host=served.url)
    reply = await client.generate(model="swarm", prompt="any", format="json", stream=False)
    assert isinstance(json.loads(reply.response), dict)
    chat = await client.chat(
        model="swarm", messages=[{"role": "user", "content": "Ann"}], format=PERSON
    )
    assert format_problem(PERSON, chat.message.content) is None
    assert served.fake.calls[-1].generation.format == PERSON
    oc = oai(served)
    done = await oc.chat.completions.create(
        model="swarm",
        messages=[{"role": "user", "content": "q"}],
        response_format={"type": "json_object"},
    )
    json.loads(done.choices[0].message.content)
    done = await oc.chat.completions.create(
        model="swarm",
        messages=[{"role": "user", "content": "q"}],
        response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON}},
    )
    assert format_problem(PERSON, done.choices[0].message.content) is None


async def test_no_valid_answer_is_an_error_in_each_shape(start) -> None:
    fake = FakeSwarm()
    fake.fail_after_assign = SwarmUnavailable(
        "session t: no valid answer: 2 dropped (not valid JSON)", "invalid_output"
    )
    served = await start(fake)
    with pytest.raises(ollama.ResponseError) as info:
        await ollama.AsyncClient(host=served.url).generate(
            model="swarm", prompt="x", format="json", stream=False
        )
    assert info.value.status_code == 422 and "not valid JSON" in info.value.error
    with pytest.raises(openai.UnprocessableEntityError) as oinfo:
        await oai(served).chat.completions.create(
            model="swarm",
            messages=[{"role": "user", "content": "q"}],
            response_format={"type": "json_object"},
        )
    assert oinfo.value.body["code"] == "invalid_output"


# --- 3. tools --------------------------------------------------------------------------------
async def test_openai_tools_round_trip(served: Served) -> None:
    client = oai(served)
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    done = await client.chat.completions.create(
        model="swarm", messages=messages, tools=[WEATHER], tool_choice="required"
    )
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {
        "city": "Paris"
    }
    assert served.fake.calls[-1].generation.tool_choice == "required"
    # the next turn carries the call and the tool's result
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18 C and sunny"},
    ]
    await client.chat.completions.create(model="swarm", messages=messages)
    prompt = served.fake.calls[-1].prompt
    assert '[called get_weather({"city": "Paris"})]' in prompt
    assert "Tool (get_weather): 18 C and sunny" in prompt
    stream = await client.chat.completions.create(
        model="swarm", messages=messages[:1], tools=[WEATHER], stream=True
    )
    chunks = [c async for c in stream]
    deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert deltas and deltas[0].function.name == "get_weather" and deltas[0].index == 0
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    none = await client.chat.completions.create(
        model="swarm", messages=messages[:1], tools=[WEATHER], tool_choice="none"
    )
    assert not none.choices[0].message.tool_calls and not served.fake.calls[-1].generation.tools


async def test_ollama_tools_round_trip(served: Served) -> None:
    client = ollama.AsyncClient(host=served.url)
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    reply = await client.chat(model="swarm", messages=messages, tools=[WEATHER])
    (call,) = reply.message.tool_calls
    assert call.function.name == "get_weather" and call.function.arguments == {"city": "Paris"}
    messages += [reply.message, {"role": "tool", "content": "18 C", "tool_name": "get_weather"}]
    await client.chat(model="swarm", messages=messages)
    assert "Tool (get_weather): 18 C" in served.fake.calls[-1].prompt
    chunks = [c async for c in await client.chat(
        model="swarm", messages=messages[:1], tools=[WEATHER], stream=True
    )]  # fmt: skip
    assert [c for c in chunks if c.message.tool_calls] and chunks[-1].done
    shown = await client.show("swarm")
    assert shown.capabilities == ["completion", "tools"]


async def test_tools_refused_where_no_provider_supports_them(start) -> None:
    fake = FakeSwarm()
    fake.caps = {"completion", "json"}
    served = await start(fake)
    client = ollama.AsyncClient(host=served.url)
    with pytest.raises(ollama.ResponseError) as info:
        await client.chat(
            model="swarm", messages=[{"role": "user", "content": "x"}], tools=[WEATHER]
        )
    assert info.value.status_code == 400 and "swarm does not support tools" in info.value.error
    with pytest.raises(openai.BadRequestError) as oinfo:
        await oai(served).chat.completions.create(
            model="swarm", messages=[{"role": "user", "content": "x"}], tools=[WEATHER]
        )
    assert "does not support tools" in oinfo.value.body["message"]
    assert (await client.show("swarm")).capabilities == ["completion"]
    assert not fake.calls


# --- 5. CORS ---------------------------------------------------------------------------------
async def test_cors_local_origins_allowed_others_refused(start) -> None:
    served = await start(origins=("https://*.example.org",))
    async with httpx.AsyncClient(base_url=served.url) as http:
        pre = await http.options(
            "/api/chat",
            headers={
                "Origin": "http://localhost:5173",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert pre.status_code == 204
        assert pre.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
        assert "POST" in pre.headers["Access-Control-Allow-Methods"]
        assert pre.headers["Access-Control-Allow-Headers"] == "content-type"
        body = {"model": "swarm", "prompt": "x", "stream": True}
        for origin in ("http://127.0.0.1:8080", "https://app.example.org"):
            reply = await http.post("/api/generate", json=body, headers={"Origin": origin})
            assert (
                reply.status_code == 200 and reply.headers["Access-Control-Allow-Origin"] == origin
            )
        evil = await http.options(
            "/api/chat",
            headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"},
        )
        assert evil.status_code == 403 and "Access-Control-Allow-Origin" not in evil.headers
        refused = await http.post(
            "/api/generate", json=body, headers={"Origin": "https://evil.test"}
        )
        assert refused.status_code == 403 and "not allowed" in refused.json()["error"]
    assert len(served.fake.calls) == 2


def test_origins_from_the_environment() -> None:
    extra = origins_from(None, {"OLLAMA_ORIGINS": "chrome-extension://*, https://x.io"})
    assert origins_from("https://a.b", {"RNET_ORIGINS": "https://c.d"}) == ("https://a.b",)
    assert origin_allowed("chrome-extension://abc", extra) and origin_allowed("https://x.io", extra)
    assert not origin_allowed("https://y.io", extra) and origin_allowed("file://", ())


# --- 6. embeddings ---------------------------------------------------------------------------
async def test_embeddings_refused_in_each_shape(served: Served) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        await ollama.AsyncClient(host=served.url).embed(model="swarm", input="x")
    assert info.value.status_code == 400 and "does not compute embeddings" in info.value.error
    with pytest.raises(openai.BadRequestError) as oinfo:
        await oai(served).embeddings.create(model="swarm", input="x")
    assert "does not compute embeddings" in oinfo.value.body["message"]
    async with httpx.AsyncClient() as http:
        old = await http.post(
            f"{served.url}/api/embeddings", json={"model": "swarm", "prompt": "x"}
        )
    assert old.status_code == 400 and "embeddings" in old.json()["error"]


# --- 7. counts and timeouts ------------------------------------------------------------------
async def test_token_counts_reported_or_labelled_estimates(served: Served) -> None:
    client = ollama.AsyncClient(host=served.url)
    served.fake.answer = {"prompt_tokens": 11, "eval_tokens": 5, "prompt_ms": 4, "eval_ms": 20}
    reply = await client.generate(model="swarm", prompt="a b", stream=False)
    assert (reply.prompt_eval_count, reply.eval_count) == (11, 5)
    assert reply.prompt_eval_duration == 4_000_000 and reply.eval_duration == 20_000_000
    async with httpx.AsyncClient() as http:
        raw = await http.post(f"{served.url}/api/generate", json={"model": "swarm", "prompt": "a"})
    assert json.loads(raw.text.splitlines()[-1])["swarm"]["tokens"] == "reported"
    served.fake.answer = {}  # a backend that reports nothing: words, labelled as estimates
    done = await oai(served).chat.completions.create(
        model="swarm", messages=[{"role": "user", "content": "a b"}]
    )
    assert done.usage.prompt_tokens == 2 and done.model_extra["swarm"]["tokens"] == "estimated"


async def test_slow_client_body_is_cut_off_with_408(start) -> None:
    served = await start(body_timeout_s=1.0)
    body = json.dumps({"model": "swarm", "prompt": "slow"}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.handle.port)
    head = (
        f"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode())

    async def trickle_until_answered() -> bytes:
        """The attack: one byte, then up to half a second waiting for the server's answer
        before the next byte; once it answers, read until it closes."""
        data = b""
        with contextlib.suppress(ConnectionResetError):  # closed while the client still sends
            for byte in body:
                writer.write(bytes([byte]))
                await writer.drain()
                try:
                    data = await asyncio.wait_for(reader.read(4096), timeout=0.5)
                except TimeoutError:
                    continue
                break
            while chunk := await reader.read(4096):
                data += chunk
        return data

    try:
        reply = await asyncio.wait_for(trickle_until_answered(), timeout=10)  # closed, not held
    finally:
        writer.close()
    status, _, rest = reply.partition(b"\r\n")
    assert b" 408 " in status and b"too slow" in rest
    assert not served.fake.calls
