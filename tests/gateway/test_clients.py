"""The official ollama and openai clients, pointed at the gateway, get the swarm's answer."""

from __future__ import annotations

import asyncio

import httpx
import ollama
import openai
import pytest

from tests.gateway.conftest import Served
from tests.gateway.fake import LOSER, WINNER, answer_for


async def test_ollama_generate_whole_reply(served: Served) -> None:
    client = ollama.AsyncClient(host=served.url)
    reply = await client.generate(model="swarm", prompt="What is 2+2?", stream=False)
    assert reply.response == answer_for("What is 2+2?")
    assert reply.done is True
    assert reply.done_reason == "stop"
    assert reply.model == "swarm"
    assert reply.total_duration is not None and reply.total_duration > 0
    assert reply.eval_count == len(answer_for("What is 2+2?").split())
    assert served.fake.calls[0].prompt == "What is 2+2?"


async def test_ollama_generate_streamed_chunks_add_up(served: Served) -> None:
    client = ollama.AsyncClient(host=served.url)
    parts = [part async for part in await client.generate(model="swarm", prompt="hi", stream=True)]
    assert len(parts) > 2  # really cut into chunks
    assert "".join(p.response or "" for p in parts) == answer_for("hi")
    assert [p.done for p in parts].count(True) == 1 and parts[-1].done
    assert parts[-1].done_reason == "stop"
    assert parts[-1].eval_duration is not None


async def test_ollama_generate_system_prompt_is_rendered(served: Served) -> None:
    client = ollama.AsyncClient(host=served.url)
    await client.generate(model="swarm", prompt="hello", system="Be brief.", stream=False)
    prompt = served.fake.calls[0].prompt
    assert prompt.startswith("System: Be brief.") and "User: hello" in prompt


async def test_ollama_chat_whole_and_streamed(served: Served) -> None:
    client = ollama.AsyncClient(host=served.url)
    history = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another one?"},
    ]
    reply = await client.chat(model="swarm", messages=history, stream=False)
    prompt = served.fake.calls[0].prompt
    assert prompt == (
        "System: You are terse.\n\nUser: Name a colour.\n\nAssistant: Blue.\n\n"
        "User: Another one?\n\nAssistant:"
    )
    assert reply.message.role == "assistant"
    assert reply.message.content == answer_for(prompt)
    assert reply.done

    parts = [
        part
        async for part in await client.chat(
            model="swarm", messages=[{"role": "user", "content": "Just this"}], stream=True
        )
    ]
    assert served.fake.calls[1].prompt == "Just this"  # a lone question passes through as is
    assert "".join(p.message.content or "" for p in parts) == answer_for("Just this")
    assert parts[-1].done and parts[-1].message is not None


async def test_ollama_list_and_show(served: Served) -> None:
    client = ollama.AsyncClient(host=served.url)
    listing = await client.list()
    # Only the swarm: providers' models are not names a request can use (issue 17), and every
    # entry has a stable, non-empty digest.
    assert [m.model for m in listing.models] == ["swarm"]
    digest = listing.models[0].digest
    assert digest and len(digest) == 64 and (await client.list()).models[0].digest == digest
    async with httpx.AsyncClient() as http:
        raw = (await http.get(f"{served.url}/api/tags")).json()["models"][0]["swarm"]
    assert raw["provider_models"] == {"llama3.2:1b": 1, "qwen2.5:1.5b": 1}
    shown = await client.show("swarm")
    assert shown.modelinfo is not None and shown.modelinfo["general.architecture"] == "swarm"
    assert shown.details is not None and shown.details.family == "swarm"


async def test_provider_model_names_are_not_served(served: Served) -> None:
    # A request naming a provider's model would be answered by whichever providers join (any
    # model): refused in both API shapes rather than answered under a misleading name.
    client = ollama.AsyncClient(host=served.url)
    with pytest.raises(ollama.ResponseError) as info:
        await client.generate(model="qwen2.5:1.5b", prompt="alias?", stream=False)
    assert info.value.status_code == 404 and "whole swarm session" in info.value.error
    oai = openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        await oai.chat.completions.create(
            model="llama3.2:1b", messages=[{"role": "user", "content": "x"}]
        )
    assert not served.fake.calls


async def test_sync_ollama_client_in_a_thread(served: Served) -> None:
    def use_sync_client() -> tuple[str, str, list[str]]:
        client = ollama.Client(host=served.url)
        whole = client.generate(model="swarm", prompt="sync")["response"]
        streamed = "".join(p["response"] for p in client.generate("swarm", "sync2", stream=True))
        names = [m.model for m in client.list().models]
        return whole, streamed, names

    whole, streamed, names = await asyncio.to_thread(use_sync_client)
    assert whole == answer_for("sync")
    assert streamed == answer_for("sync2")
    assert "swarm" in names


async def test_openai_chat_whole_reply_with_swarm_metadata(served: Served) -> None:
    client = openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0)
    completion = await client.chat.completions.create(
        model="swarm", messages=[{"role": "user", "content": "What is 2+2?"}]
    )
    assert completion.choices[0].message.content == answer_for("What is 2+2?")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    extra = completion.model_extra or {}
    assert extra["swarm"]["winner"] == WINNER
    assert extra["swarm"]["task"] == served.fake.calls[0].task
    assert extra["swarm"]["averages"][LOSER] == 0.41


async def test_openai_chat_streamed(served: Served) -> None:
    client = openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0)
    stream = await client.chat.completions.create(
        model="swarm",
        messages=[{"role": "user", "content": [{"type": "text", "text": "parts"}]}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer_for("parts")
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert len({c.id for c in chunks}) == 1


async def test_openai_models_list(served: Served) -> None:
    client = openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0)
    ids = [m.id async for m in client.models.list()]
    assert ids == ["swarm"]
    model = await client.models.retrieve("swarm")
    assert model.id == "swarm"


async def test_sync_openai_client_in_a_thread(served: Served) -> None:
    def use_sync_client() -> tuple[str | None, str]:
        client = openai.OpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0)
        whole = client.chat.completions.create(
            model="swarm", messages=[{"role": "user", "content": "one"}]
        )
        stream = client.chat.completions.create(
            model="swarm", messages=[{"role": "user", "content": "two"}], stream=True
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        return whole.choices[0].message.content, streamed

    whole, streamed = await asyncio.to_thread(use_sync_client)
    assert whole == answer_for("one")
    assert streamed == answer_for("two")


async def test_openai_legacy_completions_whole_and_streamed(served: Served) -> None:
    client = openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0)
    completion = await client.completions.create(model="swarm", prompt="legacy")
    assert completion.choices[0].text == answer_for("legacy")
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.model_extra or {})["swarm"]["task"] == served.fake.calls[0].task
    stream = await client.completions.create(model="swarm", prompt=["streamed"], stream=True)
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == answer_for("streamed")
    assert chunks[-1].choices[0].finish_reason == "stop"
