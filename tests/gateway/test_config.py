"""Listen addresses, the token rule, bearer checks and the pure helpers."""

from __future__ import annotations

import httpx
import ollama
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.gateway import (
    ApiError,
    GatewayConfig,
    check_exposure,
    parse_listen,
    render_chat,
    serve_swarm,
    split_text,
)
from tests.gateway.conftest import Served
from tests.gateway.fake import FakeSwarm, answer_for


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:11500", ("127.0.0.1", 11500)),
        (":8080", ("127.0.0.1", 8080)),
        ("8080", ("127.0.0.1", 8080)),
        ("[::1]:9000", ("::1", 9000)),
        ("0.0.0.0:11434", ("0.0.0.0", 11434)),
        ("http://localhost:5/", ("localhost", 5)),
    ],
)
def test_parse_listen(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["host:port", "1.2.3.4:70000", "", "[::1]"])
def test_parse_listen_rejects_garbage(listen: str) -> None:
    with pytest.raises(ValueError, match="listen address"):
        parse_listen(listen)


def test_non_loopback_needs_a_token() -> None:
    check_exposure("127.0.0.1", None)
    check_exposure("::1", None)
    check_exposure("localhost", None)
    with pytest.raises(ValueError, match="--token"):
        check_exposure("0.0.0.0", None)
    with pytest.raises(ValueError, match="--token"):
        check_exposure("192.168.1.10", "")
    check_exposure("0.0.0.0", "s3cret")


async def test_serve_refuses_public_address_without_token() -> None:
    with pytest.raises(ValueError, match="--token"):
        await serve_swarm(FakeSwarm(), "0.0.0.0:0", GatewayConfig())


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="providers"):
        GatewayConfig(providers=1)
    with pytest.raises(ValueError, match="timeout"):
        GatewayConfig(timeout_s=0)
    with pytest.raises(ValueError, match="token"):
        GatewayConfig(token="  ")


async def test_public_bind_with_token_checks_bearer(start) -> None:
    served: Served = await start(listen="0.0.0.0:0", token="s3cret")
    url = f"http://127.0.0.1:{served.handle.port}"
    body = {"model": "swarm", "prompt": "auth?", "stream": False}
    async with httpx.AsyncClient(base_url=url) as client:
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": "s3cret"},
            {"Authorization": "Bearer s3cr\u00e9t".encode()},
        ):
            reply = await client.post("/api/generate", json=body, headers=headers)
            assert reply.status_code == 401 and "Bearer" in reply.json()["error"]
        reply = await client.get("/v1/models")
        assert reply.status_code == 401 and reply.json()["error"]["code"] == "invalid_api_key"
        reply = await client.post(
            "/api/generate", json=body, headers={"Authorization": "Bearer s3cret"}
        )
        assert reply.json()["response"] == answer_for("auth?")
    assert len(served.fake.calls) == 1
    # The official clients pass the token the usual ways.
    good = ollama.AsyncClient(host=url, headers={"Authorization": "Bearer s3cret"})
    assert (await good.generate(model="swarm", prompt="o", stream=False)).response == answer_for(
        "o"
    )
    oai = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="s3cret", max_retries=0)
    assert "swarm" in [m.id async for m in oai.models.list()]
    with pytest.raises(openai.AuthenticationError):
        await openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="nope", max_retries=0).models.list()


async def test_handle_reports_bound_port(served: Served) -> None:
    assert served.handle.port > 0
    assert served.url == f"http://127.0.0.1:{served.handle.port}"
    async with httpx.AsyncClient(base_url=served.url) as client:
        assert (await client.get("/")).status_code == 200
        version = (await client.get("/api/version")).json()
        assert version["version"].count(".") == 2


def test_render_chat_transcript_and_errors() -> None:
    assert render_chat([{"role": "user", "content": "hi"}]) == "hi"
    rendered = render_chat(
        [
            {"role": "developer", "content": "rules"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
        ]
    )
    assert rendered == "System: rules\n\nUser: a\nb\n\nAssistant:"
    for bad in (None, [], "hi", [{"role": "user", "content": "  "}], [{"content": "x"}]):
        with pytest.raises(ApiError) as caught:
            render_chat(bad)
        assert caught.value.status == 400


@given(st.text())
def test_split_text_pieces_add_up(text: str) -> None:
    pieces = split_text(text)
    assert "".join(pieces) == text
    assert all(pieces)


def test_long_chat_history_drops_oldest_turns_first() -> None:
    history = [{"role": "system", "content": "rules"}]
    history += [{"role": "user", "content": f"turn {i} " + "x" * 50} for i in range(20)]
    history += [{"role": "user", "content": "the latest question"}]
    prompt = render_chat(history, limit=300)
    assert len(prompt) <= 300
    assert prompt.startswith("System: rules") and "the latest question" in prompt
    assert "turn 0 " not in prompt and "turn 19 " in prompt
    # A single oversized turn is left as is: the request handler answers 413 for it.
    assert len(render_chat([{"role": "user", "content": "y" * 400}], limit=300)) == 400


def test_config_rejects_unknown_aggregator() -> None:
    with pytest.raises(ValueError, match="aggregator"):
        GatewayConfig(aggregator="vibes")
