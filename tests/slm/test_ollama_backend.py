"""The Ollama backend through the official client against the double: answers, streaming,
start-up check, and every failure mapped to a one-line SLMError within its time bound."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from node.slm.base import GenParams, SLMError
from node.slm.ollama_backend import SYSTEM_PROMPT, OllamaBackend
from tests.ollama_double import OllamaDouble, Reply

from .conftest import MODEL

# Upper bounds for "fails fast" assertions; generous because the machine is shared.
SLACK_S = 3.0


async def test_generate_plain_text_with_options(
    double: OllamaDouble, backend: OllamaBackend
) -> None:
    generation = await backend.generate("What is 2+2?", {"temperature": 0.2, "seed": 7})
    assert generation.text == f"{MODEL} answers: What is 2+2?"
    assert generation.model == MODEL
    assert not generation.simulated
    assert generation.timings["wall_ms"] >= 0
    assert generation.timings["eval_count"] > 0
    assert "total_ms" in generation.timings
    body = double.requests_to("/api/chat")[-1].body
    assert body["stream"] is False
    assert "format" not in body, "answers are plain text, no JSON wrapper"
    assert body["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert body["messages"][1] == {"role": "user", "content": "What is 2+2?"}
    assert body["options"]["temperature"] == 0.2
    assert body["options"]["seed"] == 7
    assert body["options"]["num_predict"] > 0
    assert body["keep_alive"] == "10m"


async def test_generate_stream_yields_the_answer_in_chunks(backend: OllamaBackend) -> None:
    chunks = [c async for c in backend.generate_stream("tell me")]
    assert len(chunks) > 1
    assert "".join(chunks) == f"{MODEL} answers: tell me"


async def test_check_passes_and_records_the_server_version(backend: OllamaBackend) -> None:
    await backend.check()
    assert backend.server_version


async def test_model_tag_latest_is_implied() -> None:
    async with OllamaDouble(models=["llama3.2:latest"]) as double:
        b = OllamaBackend(name="t", model="llama3.2", host=double.url)
        await b.check()
        await b.aclose()


async def test_unknown_model_gives_the_pull_hint(double: OllamaDouble) -> None:
    b = OllamaBackend(name="t", model="phi3:mini", host=double.url, timeout_gen=5)
    with pytest.raises(SLMError) as err:
        await b.check()
    assert err.value.kind == "model_missing"
    assert "`ollama pull phi3:mini`" in str(err.value)
    with pytest.raises(SLMError, match="ollama pull phi3:mini") as err:
        await b.generate("hi")  # the 404 of a chat maps the same way
    assert err.value.kind == "model_missing"
    await b.aclose()


async def test_connection_refused_gives_the_not_reachable_hint(closed_port: int) -> None:
    b = OllamaBackend(name="t", host=f"127.0.0.1:{closed_port}", timeout_gen=5)
    for attempt in (b.check(), b.generate("hi"), b.judge("q", "a")):
        with pytest.raises(SLMError) as err:
            await attempt
        assert err.value.kind == "unreachable"
        message = str(err.value)
        assert "\n" not in message
        assert f"not reachable at http://127.0.0.1:{closed_port}" in message
        assert "ollama serve" in message
    with pytest.raises(SLMError, match="not reachable"):  # streaming: httpx.ConnectError path
        async for _ in b.generate_stream("hi"):
            pass
    await b.aclose()


@pytest.mark.parametrize("stream", [False, True])
async def test_timeout_is_our_error_within_the_bound(double: OllamaDouble, stream: bool) -> None:
    double.model(MODEL).delay_s = 60  # the server "thinks" far longer than our bound
    b = OllamaBackend(name="t", host=double.url, timeout_gen=0.5)
    started = time.monotonic()
    with pytest.raises(SLMError) as err:
        if stream:
            async for _ in b.generate_stream("slow"):
                pass
        else:
            await b.generate("slow")
    elapsed = time.monotonic() - started
    assert err.value.kind == "timeout"
    assert "within 0.5s" in str(err.value)
    assert 0.4 <= elapsed < 0.5 + SLACK_S
    await b.aclose()


async def test_stream_deadline_covers_the_whole_answer(double: OllamaDouble) -> None:
    # Each chunk is quick, but together they exceed the bound.
    double.script(MODEL, Reply(text="a b c d e f g h i j k l", chunk_delay_s=0.2))
    b = OllamaBackend(name="t", host=double.url, timeout_gen=0.7)
    received: list[str] = []
    started = time.monotonic()
    with pytest.raises(SLMError, match="did not answer within"):
        async for chunk in b.generate_stream("x"):
            received.append(chunk)
    assert 0 < len(received) < 12
    assert time.monotonic() - started < 0.7 + SLACK_S
    await b.aclose()


async def test_judge_timeout(double: OllamaDouble) -> None:
    double.script(MODEL, Reply(delay_s=60), kind="judge")
    b = OllamaBackend(name="t", host=double.url, timeout_judge=0.5)
    started = time.monotonic()
    with pytest.raises(SLMError, match=r"did not judge within 0\.5s"):
        await b.judge("q", "a")
    assert time.monotonic() - started < 0.5 + SLACK_S
    await b.aclose()


async def test_server_error_mid_stream_error_and_dropped_connection(
    double: OllamaDouble, backend: OllamaBackend
) -> None:
    double.script(MODEL, Reply(status=500, error="out of memory\nsecond line"))
    with pytest.raises(SLMError) as err:
        await backend.generate("x")
    assert str(err.value) == f"Ollama at {double.url} failed: out of memory second line (HTTP 500)"

    double.script(MODEL, Reply(text="one two three", error_after=1, error="runner crashed"))
    with pytest.raises(SLMError, match="runner crashed"):
        async for _ in backend.generate_stream("x"):
            pass

    double.script(MODEL, Reply(text="one two three", drop_after=1))
    with pytest.raises(SLMError, match="broke") as err:
        async for _ in backend.generate_stream("x"):
            pass
    assert "\n" not in str(err.value)


async def test_a_generation_is_cancellable(double: OllamaDouble, backend: OllamaBackend) -> None:
    double.model(MODEL).delay_s = 60
    task = asyncio.create_task(backend.generate("slow"))
    await double.wait_request("/api/chat")  # the request reached the server
    task.cancel()
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < SLACK_S


async def test_abandoned_stream_is_closed(double: OllamaDouble, backend: OllamaBackend) -> None:
    double.script(MODEL, Reply(text="a b c d e f", chunk_delay_s=0.05))
    async with contextlib.aclosing(backend.generate_stream("x")) as stream:
        async for _ in stream:
            break
    # The connection went back to the pool or was closed: the next call works at once.
    assert (await backend.generate("y")).text.endswith("y")


async def test_bad_input_is_rejected_before_any_request(
    double: OllamaDouble, backend: OllamaBackend
) -> None:
    with pytest.raises(SLMError, match="prompt is empty"):
        await backend.generate("   ")
    with pytest.raises(SLMError, match="temperature"):
        await backend.generate("hi", {"temperature": "hot"})
    with pytest.raises(SLMError, match="num_predict"):
        await backend.generate("hi", {"num_predict": -1})
    with pytest.raises(SLMError, match="response must be text"):
        await backend.judge("hi", None)  # type: ignore[arg-type]
    assert double.requests_to("/api/chat") == []
    # Unknown params are ignored (a newer leader may send more), known ones pass through.
    await backend.generate("hi", GenParams.from_mapping({"temperature": 0, "mirostat": 2}))
    assert double.requests_to("/api/chat")[-1].body["options"]["temperature"] == 0


async def test_something_else_at_the_address_is_named(unused_tcp_port: int) -> None:
    from aiohttp import web

    runner = web.AppRunner(web.Application())  # answers 404 to everything, like a stray server
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", unused_tcp_port)
    await site.start()
    try:
        b = OllamaBackend(name="t", host=f"127.0.0.1:{unused_tcp_port}", timeout_gen=5)
        with pytest.raises(SLMError, match="is it an Ollama server"):
            await b.check()
        with pytest.raises(SLMError) as err:
            await b.generate("hi")
        assert err.value.kind == "server_error"  # a bare 404 is not "model not pulled"
        await b.aclose()
    finally:
        await runner.cleanup()
