"""The gateway in front of a real local swarm: bootstrap + providers + ``rnet serve``, all real
processes on loopback with the ``sim`` backend, driven by the official ollama and openai clients.

One swarm per module (processes are the expensive part on a shared 2-core machine); waits are
conditions with generous deadlines, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import ollama
import openai
import pytest

from tests.node.swarm import NodeProc, Swarm, free_port
from tests.tool_specs import WEATHER

pytestmark = pytest.mark.slow

PROVIDERS = 3
GEN_MS = 600


@dataclass
class LiveSwarm:
    swarm: Swarm
    providers: list[NodeProc]
    gateway: NodeProc
    url: str

    def provider_ids(self) -> set[str]:
        return {p.peer_id for p in self.providers}


def start_gateway_node(swarm: Swarm, name: str, *args: str) -> tuple[NodeProc, str]:
    node = swarm.spawn("serve", name, ["--listen", "127.0.0.1:0", *args])
    announced = node.wait_event("gateway", timeout=60)
    return node, announced["url"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSwarm]:
    workdir: Path = tmp_path_factory.mktemp("gateway-swarm")
    with Swarm(workdir) as swarm:
        swarm.start_bootstrap(timeout=60)
        # Five concurrent gateway sessions need every provider in each of them; a model that
        # takes a little while to answer leaves a client time to hang up mid-session.
        # (and, all five led by one gateway, a per-leader cap to match: the default is 1)
        flags = ["--max-sessions", "8", "--max-per-leader", "8", "--sim-gen-ms", str(GEN_MS)]
        providers = swarm.start_providers(PROVIDERS - 1, flags, timeout=60)
        # The last provider also serves the API itself (`rnet node --serve`, the runtime's hook).
        providers.append(swarm.start_provider(None, [*flags, "--serve", "127.0.0.1:0"], timeout=60))
        # Joins end the join stage as soon as all providers are in; the generous deadline only
        # matters on a loaded machine.
        gateway, url = start_gateway_node(
            swarm,
            "gateway",
            *("--providers", str(PROVIDERS), "--timeout", "60", "--join-deadline", "15"),
            *("--exec-deadline", "20", "--verify-deadline", "20"),
        )
        live = LiveSwarm(swarm, providers, gateway, url)
        # /api/tags lists the providers whose presence (with a model) the gateway node has seen;
        # it prints a peer_info event for each as it learns it: wait on those, then ask once.
        swarm.wait_until(
            lambda: _models_seen(gateway) >= live.provider_ids(), 60, "every provider's model"
        )
        assert _providers_listed(live), "every provider in the gateway's /api/tags"
        # Presence carries the providers' capabilities (sim: tools, json).
        assert _swarm_has_tools(live), "the sim providers' tool capability in /api/show"
        yield live


def _models_seen(node: NodeProc) -> set[str]:
    return {
        e["peer_id"]
        for e in node.find_all(lambda e: e.get("event") == "peer_info")
        if e.get("model") and e.get("state") == "connected"
    }


def _providers_listed(live: LiveSwarm) -> bool:
    models = httpx.get(f"{live.url}/api/tags", timeout=10).json()["models"]
    peers = {p for m in models for p in m.get("swarm", {}).get("providers", [])}
    return models[0]["name"] == "swarm" and peers >= live.provider_ids()


def _swarm_has_tools(live: LiveSwarm) -> bool:
    shown = httpx.post(f"{live.url}/api/show", json={"model": "swarm"}, timeout=10).json()
    return "tools" in shown["capabilities"]


def result_of(live: LiveSwarm, task: str) -> dict:
    """The ``result`` event the gateway node (the leader) emitted for ``task``."""
    return live.gateway.wait_event("result", timeout=30, task=task)


def check_metadata(live: LiveSwarm, swarm: dict, text: str) -> None:
    """The extra fields match the leader's signed result and name real executors."""
    event = result_of(live, swarm["task"])
    assert event["text"] == text
    assert swarm["winner"] == event["winner"] and swarm["winner"] in live.provider_ids()
    assert swarm["score"] == event["score"] and 0.0 <= swarm["score"] <= 0.99
    assert swarm["averages"] == event["averages"] and swarm["winner"] in swarm["averages"]
    assert set(swarm["averages"]) <= live.provider_ids()
    assert (swarm["requested"], swarm["joined"]) == (event["requested"], event["joined"])
    assert swarm["requested"] == PROVIDERS and swarm["joined"] >= 2


def test_tags_and_show_list_the_swarm_with_its_capabilities(live: LiveSwarm) -> None:
    client = ollama.Client(host=live.url)
    listed = client.list().models
    assert [m.model for m in listed] == ["swarm"] and len(listed[0].digest or "") == 64
    shown = client.show("swarm")
    assert shown.modelinfo["swarm.providers"] == PROVIDERS
    assert shown.capabilities == ["completion", "tools"]


async def test_generation_fields_through_the_real_swarm(live: LiveSwarm) -> None:
    """Issue 17 against real processes: the sim executors honour max_tokens, JSON and tools,
    and the leader keeps only answers that fit."""
    client = openai.AsyncOpenAI(base_url=f"{live.url}/v1", api_key="none", max_retries=0)
    question = [{"role": "user", "content": "What is the capital of France?"}]
    cut, as_json, called = await asyncio.gather(
        client.chat.completions.create(model="swarm", messages=question, max_tokens=3),
        client.chat.completions.create(
            model="swarm", messages=question, response_format={"type": "json_object"}
        ),
        client.chat.completions.create(
            model="swarm",
            messages=[{"role": "user", "content": "What is the weather in Paris?"}],
            tools=[WEATHER],
            tool_choice="required",
        ),
    )
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens <= 3
    assert cut.choices[0].message.content.startswith("[simulated sim/")
    assert (cut.model_extra or {})["swarm"]["tokens"] == "reported"
    assert "simulated" in json.loads(as_json.choices[0].message.content)["answer"]
    (call,) = called.choices[0].message.tool_calls
    assert called.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    event = result_of(live, (called.model_extra or {})["swarm"]["task"])
    assert event["answer"]["tool_calls"] == [
        {"name": "get_weather", "arguments": {"city": "Paris"}}
    ]


async def test_ollama_generate_whole_and_streamed(live: LiveSwarm) -> None:
    client = ollama.AsyncClient(host=live.url, timeout=60)
    reply = await client.generate(model="swarm", prompt="What is 2+2?", stream=False)
    assert reply.done and reply.response
    raw = httpx.post(
        f"{live.url}/api/generate",
        json={"model": "swarm", "prompt": "What is the capital of France?", "stream": False},
        timeout=60,
    ).json()
    check_metadata(live, raw["swarm"], raw["response"])

    parts = [
        p async for p in await client.generate(model="swarm", prompt="Name a colour.", stream=True)
    ]
    assert parts[-1].done and parts[-1].done_reason == "stop"
    text = "".join(p.response or "" for p in parts)
    assert text and len(parts) >= 2


async def test_ollama_chat_whole_and_streamed(live: LiveSwarm) -> None:
    client = ollama.AsyncClient(host=live.url, timeout=60)
    history = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "What is 2+2?"},
    ]
    reply = await client.chat(model="swarm", messages=history, stream=False)
    assert reply.message.role == "assistant" and reply.message.content
    parts = [p async for p in await client.chat(model="swarm", messages=history, stream=True)]
    assert "".join(p.message.content or "" for p in parts)
    assert parts[-1].done


async def test_openai_client_whole_streamed_and_models(live: LiveSwarm) -> None:
    client = openai.AsyncOpenAI(base_url=f"{live.url}/v1", api_key="none", max_retries=0)
    completion = await client.chat.completions.create(
        model="swarm", messages=[{"role": "user", "content": "What is the capital of Italy?"}]
    )
    text = completion.choices[0].message.content
    assert text
    check_metadata(live, (completion.model_extra or {})["swarm"], text)

    stream = await client.chat.completions.create(
        model="swarm", messages=[{"role": "user", "content": "What is 3+3?"}], stream=True
    )
    chunks = [c async for c in stream]
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed
    final = chunks[-1].model_extra or {}
    check_metadata(live, final["swarm"], streamed)

    ids = [m.id async for m in client.models.list()]
    assert ids == ["swarm"]


async def test_five_concurrent_requests_get_distinct_sessions(live: LiveSwarm) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=90) as http:

        async def ask(i: int) -> dict:
            reply = await http.post(
                "/api/generate",
                json={"model": "swarm", "prompt": f"What is {i}+{i}?", "stream": False},
            )
            assert reply.status_code == 200, reply.text
            return reply.json()

        replies = await asyncio.gather(*(ask(i) for i in range(5)))
    tasks = [r["swarm"]["task"] for r in replies]
    assert len(set(tasks)) == 5
    for reply in replies:
        event = result_of(live, reply["swarm"]["task"])
        assert event["text"] == reply["response"]  # no answer went to the wrong request


def test_rnet_node_serve_answers_through_the_others(live: LiveSwarm) -> None:
    serving = live.providers[-1]
    url = serving.wait_event("gateway", timeout=30)["url"]
    reply = httpx.post(
        f"{url}/api/generate",
        json={"model": "swarm", "prompt": "What is 5+5?", "stream": False},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["response"]
    # It led the session itself; the participants are the other nodes (never the leader).
    event = serving.wait_event("result", timeout=30, task=body["swarm"]["task"])
    assert event["leader"] == serving.peer_id
    assert serving.peer_id not in body["swarm"]["averages"]


def test_error_statuses_against_the_real_node(live: LiveSwarm) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as http:
        assert http.post("/api/generate", content=b"{").status_code == 400
        reply = http.post("/api/chat", json={"model": "nope", "messages": []})
        assert reply.status_code == 404 and "nope" in reply.json()["error"]
        reply = http.post(
            "/v1/chat/completions",
            json={"model": "nope", "messages": [{"role": "user", "content": "x"}]},
        )
        assert reply.status_code == 404 and reply.json()["error"]["code"] == "model_not_found"
        reply = http.post("/api/generate", content=b"x" * (2 * 1024 * 1024))
        assert reply.status_code == 413
        reply = http.post(
            "/api/generate", json={"model": "swarm", "prompt": "Still up?", "stream": False}
        )
        assert reply.status_code == 200 and reply.json()["response"]


def test_no_providers_is_503_with_reason(live: LiveSwarm) -> None:
    # A gateway whose bootstrap does not exist sees no providers: its session is aborted.
    lonely, url = start_gateway_node(
        live.swarm,
        "lonely",
        "--bootstrap",
        f"/ip4/127.0.0.1/tcp/{free_port()}/p2p/{live.swarm.bootstrap_maddr.rsplit('/', 1)[1]}",
        "--join-deadline",
        "0.5",
        "--timeout",
        "20",
    )
    try:
        # Streamed (Ollama's default): the headers wait for the join window, so still a 503.
        reply = httpx.post(
            f"{url}/api/generate", json={"model": "swarm", "prompt": "anyone?"}, timeout=30
        )
        assert reply.status_code == 503
        assert "provider" in reply.json()["error"] or "joined" in reply.json()["error"]
        reply = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "swarm", "messages": [{"role": "user", "content": "anyone?"}]},
            timeout=30,
        )
        assert reply.status_code == 503 and reply.json()["error"]["type"] == "service_unavailable"
    finally:
        assert lonely.terminate() == 0


def test_client_disconnect_aborts_the_session(live: LiveSwarm) -> None:
    since = live.gateway.mark()
    with (
        httpx.Client(base_url=live.url, timeout=60) as http,
        http.stream(
            "POST", "/api/generate", json={"model": "swarm", "prompt": "Never mind."}
        ) as reply,
    ):
        # Headers come once the session has its participants; hang up right then, while the
        # executors still need GEN_MS to answer.
        assert reply.status_code == 200
    started = live.gateway.wait_for(
        lambda e: e["event"] == "session" and e["stage"] == "execute",
        since=since,
        what="the gateway's session under way",
    )
    ended = live.gateway.wait_for(
        lambda e: (
            e["event"] == "session"
            and e["task"] == started["task"]
            and e["stage"] in ("aborted", "done")
        ),
        since=since,
        what="that session's end",
    )
    assert ended["stage"] == "aborted"
    # and the gateway goes on serving
    reply = httpx.post(
        f"{live.url}/api/generate",
        json={"model": "swarm", "prompt": "Back again?", "stream": False},
        timeout=60,
    )
    assert reply.status_code == 200


def test_answers_that_break_the_schema_are_dropped_and_counted(live: LiveSwarm) -> None:
    """No executor can meet an impossible schema: the leader drops every answer (rejects it
    as invalid_answer, counted) and the client gets 422 in its API's shape, not broken JSON."""
    impossible = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 5, "maximum": 1}},
        "required": ["n"],
    }
    since = live.gateway.mark()
    reply = httpx.post(
        f"{live.url}/v1/chat/completions",
        json={
            "model": "swarm",
            "messages": [{"role": "user", "content": "Pick n."}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "n", "schema": impossible},
            },
        },
        timeout=60,
    )
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["code"] == "invalid_output" and "maximum" in error["message"]
    rejected = live.gateway.wait_for(
        lambda e: e["event"] == "rejected" and e["reason"] == "invalid_answer",
        since=since,
        what="the leader's invalid_answer reject",
    )
    assert rejected["count"] >= 1 and rejected["sender"] in live.provider_ids()
