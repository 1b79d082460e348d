"""The aiohttp application: routes for the Ollama and OpenAI APIs, error and auth middleware."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from typing import Any

from aiohttp import web

from node.gateway.answer import answer_request
from node.gateway.config import (
    CONFIG_KEY,
    OLLAMA_API_VERSION,
    RNET_VERSION,
    SESSIONS_KEY,
    STATE_KEY,
    SWARM_MODEL,
    GatewayConfig,
    GatewayState,
)
from node.gateway.cors import add_cors_headers, origin_allowed, preflight
from node.gateway.errors import ApiError, error_body, is_openai, too_large
from node.gateway.params import ollama_generation, openai_generation
from node.gateway.queue import session_queue
from node.gateway.replies import (
    OllamaChat,
    OllamaGenerate,
    OpenAIChat,
    OpenAICompletion,
    now_iso,
)
from node.gateway.requests import (
    capabilities_of,
    check_prompt,
    model_of,
    optional_field,
    prompt_limit,
    provider_models_of,
    read_json,
    render_chat,
    served_models,
    stream_flag,
)
from node.gateway.swarm import SwarmSessions

log = logging.getLogger(__name__)


def error_response(
    request: web.Request,
    status: int,
    message: str,
    code: str | None = None,
    headers: dict[str, str] | None = None,
):
    body = error_body(is_openai(request), status, message, code)
    return web.json_response(body, status=status, headers=headers)


async def _cut_off(request: web.Request, exc: ApiError) -> web.StreamResponse:
    """Answer a client too slow to send its body, then close: aiohttp would otherwise keep
    reading the trickle for its lingering time."""
    response = error_response(request, exc.status, exc.message, exc.code)
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    if request.transport is not None:
        request.transport.close()  # flushes the reply, then closes
    return response


@web.middleware
async def _cors_middleware(request: web.Request, handler):
    """Preflights answered here; a disallowed browser origin is refused before anything runs."""
    extra = request.app[CONFIG_KEY].origins
    if request.method == "OPTIONS":
        return preflight(request, extra)
    origin = request.headers.get("Origin")
    if origin is not None and not origin_allowed(origin, extra):
        return error_response(request, 403, f"origin {origin!r} is not allowed", "origin")
    return await handler(request)


@web.middleware
async def _errors_middleware(request: web.Request, handler):
    """Every failure leaves as JSON in the caller's API shape; the server keeps serving."""
    try:
        return await handler(request)
    except ApiError as exc:
        if exc.status >= 500:
            log.warning("%s %s -> %d: %s", request.method, request.path, exc.status, exc.message)
        if exc.status == 408:
            return await _cut_off(request, exc)
        return error_response(request, exc.status, exc.message, exc.code, exc.headers)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[CONFIG_KEY].max_body_bytes
        return error_response(request, 413, too_large(limit), "body_too_large")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = {404: f"no such endpoint: {request.method} {request.path}"}.get(
            exc.status, exc.reason
        )
        if exc.status == 405:
            message = f"method {request.method} not allowed on {request.path}"
        return error_response(request, exc.status, message)
    except (asyncio.CancelledError, ConnectionResetError):
        raise  # the client is gone: nothing left to answer
    except Exception:
        log.exception("gateway: unhandled error on %s %s", request.method, request.path)
        return error_response(request, 500, "internal error in the swarm gateway (see node log)")


@web.middleware
async def _auth_middleware(request: web.Request, handler):
    token: str | None = request.app[CONFIG_KEY].token
    if token is None or request.path == "/" or request.method == "OPTIONS":
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    # Bytes, not str: compare_digest refuses non-ASCII str, and any header must get a 401.
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise ApiError(401, "missing or wrong 'Authorization: Bearer <token>'", "invalid_api_key")
    return await handler(request)


async def _ollama_generate(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    model = model_of(request, body)
    stream = stream_flag(body, default=True)
    prompt = optional_field(body, "prompt", str, "a string")
    if body.get("images"):
        raise ApiError(400, "images are not supported by the swarm")
    generation, ignored = ollama_generation(body, chat=False)
    if not prompt:
        # Ollama answers an empty prompt with a "load" reply (clients preload models this way).
        return _load_reply(OllamaGenerate(model, "").chunk(""), stream)
    if not prompt.strip():
        raise ApiError(400, "'prompt' must not be blank")
    system = optional_field(body, "system", str, "a string")
    if system:
        prompt = f"System: {system}\n\nUser: {prompt}\n\nAssistant:"
    dialect = OllamaGenerate(model, check_prompt(request, prompt), generation, ignored)
    return await answer_request(request, dialect, stream)


async def _ollama_chat(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    model = model_of(request, body)
    stream = stream_flag(body, default=True)
    messages = body.get("messages")
    generation, ignored = ollama_generation(body, chat=True)
    if messages is None or messages == []:
        # Like Ollama: no messages is a "load" request, answered at once without a session.
        return _load_reply(OllamaChat(model, "").chunk(""), stream)
    prompt = check_prompt(request, render_chat(messages, prompt_limit(request)))
    return await answer_request(request, OllamaChat(model, prompt, generation, ignored), stream)


def _load_reply(record: dict[str, Any], stream: bool) -> web.Response:
    record = {**record, "done": True, "done_reason": "load"}
    if not stream:
        return web.json_response(record)
    return web.Response(
        body=json.dumps(record).encode() + b"\n", content_type="application/x-ndjson"
    )


async def _openai_chat(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    model = model_of(request, body)
    stream = stream_flag(body, default=False)
    n = body.get("n", 1)
    if n not in (None, 1):
        raise ApiError(400, "'n' must be 1: the swarm returns one winning answer", "unsupported")
    options = optional_field(body, "stream_options", dict, "an object") or {}
    generation, ignored = openai_generation(body, chat=True)
    prompt = check_prompt(request, render_chat(body.get("messages"), prompt_limit(request)))
    dialect = OpenAIChat(
        model, prompt, generation, ignored, include_usage=bool(options.get("include_usage"))
    )
    return await answer_request(request, dialect, stream)


async def _openai_completion(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    model = model_of(request, body)
    stream = stream_flag(body, default=False)
    if body.get("n", 1) not in (None, 1):
        raise ApiError(400, "'n' must be 1: the swarm returns one winning answer", "unsupported")
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]  # a batch of one
    if not isinstance(prompt, str) or not prompt.strip():
        raise ApiError(400, "'prompt' is required: one non-empty string")
    options = optional_field(body, "stream_options", dict, "an object") or {}
    generation, ignored = openai_generation(body, chat=False)
    dialect = OpenAICompletion(
        model,
        check_prompt(request, prompt),
        generation,
        ignored,
        include_usage=bool(options.get("include_usage")),
    )
    return await answer_request(request, dialect, stream)


def _details(family: str) -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "swarm",
        "family": family,
        "families": [family],
        "parameter_size": "",
        "quantization_level": "",
    }


def swarm_digest(name: str = SWARM_MODEL) -> str:
    """A stable digest per served name (clients key caches on it; it must not be empty)."""
    return hashlib.sha256(f"rnet-swarm:{name}".encode()).hexdigest()


async def _ollama_tags(request: web.Request) -> web.Response:
    # Only the swarm: a provider's model is not something a request can name (see model_of).
    # Its size is 0: the swarm has no weights of its own; the providers' models are listed
    # under "swarm" for information.
    by_model: dict[str, list[str]] = {}
    for peer, name in sorted(provider_models_of(request.app).items()):
        by_model.setdefault(name, []).append(peer)
    models = [
        {
            "name": SWARM_MODEL,
            "model": SWARM_MODEL,
            "modified_at": now_iso(),
            "size": 0,
            "digest": swarm_digest(),
            "details": _details("swarm"),
            "swarm": {
                "providers": sorted(p for peers in by_model.values() for p in peers),
                "provider_models": {name: len(peers) for name, peers in sorted(by_model.items())},
            },
        }
    ]
    return web.json_response({"models": models})


async def _ollama_version(request: web.Request) -> web.Response:
    return web.json_response({"version": OLLAMA_API_VERSION, "rnet_version": RNET_VERSION})


async def _ollama_show(request: web.Request) -> web.Response:
    body = await read_json(request)
    if "model" not in body and isinstance(body.get("name"), str):
        body["model"] = body["name"]  # older clients send "name"
    model = model_of(request, body)
    cfg: GatewayConfig = request.app[CONFIG_KEY]
    return web.json_response(
        {
            "modelfile": f"# rnet swarm: {cfg.providers} providers per session, "
            f"{cfg.aggregator} of peer scores\nFROM {SWARM_MODEL}\n",
            "parameters": "",
            "template": "{{ .Prompt }}",
            "details": _details("swarm"),
            "model_info": {
                "general.architecture": "swarm",
                "general.name": model,
                "swarm.providers": cfg.providers,
                "swarm.aggregator": cfg.aggregator,
                "swarm.timeout_s": cfg.timeout_s,
                "swarm.provider_models": sorted(set(provider_models_of(request.app).values())),
            },
            "capabilities": _capabilities(request.app),
            "modified_at": now_iso(),
        }
    )


def _capabilities(app: web.Application) -> list[str]:
    """Ollama's capability names for what the providers seen can really do."""
    found = capabilities_of(app)
    return ["completion", "tools"] if found and "tools" in found else ["completion"]


async def _ollama_ps(request: web.Request) -> web.Response:
    return web.json_response({"models": []})


def _openai_model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "rnet-swarm"}


async def _openai_models(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [_openai_model(SWARM_MODEL)]})


async def _embeddings(request: web.Request) -> web.Response:
    # Refused in each API's shape (a bare 404 made LangChain report "model not found").
    raise ApiError(
        400,
        "the swarm does not compute embeddings: 'swarm' does not support embeddings "
        "(use an embedding model on a local Ollama for that)",
        "unsupported",
    )


async def _openai_model_one(request: web.Request) -> web.Response:
    name = request.match_info["model"]
    if name not in served_models(request.app):
        raise ApiError(404, f"model '{name}' not found", "model_not_found")
    return web.json_response(_openai_model(name))


async def _root(request: web.Request) -> web.Response:
    # The Ollama CLI and several clients probe "/" to see whether a server is up.
    return web.Response(text="rnet swarm gateway is running (Ollama and OpenAI APIs)")


def make_app(sessions: SwarmSessions, config: GatewayConfig | None = None) -> web.Application:
    """The gateway as an aiohttp application serving ``sessions`` (used by tests and servers)."""
    config = config or GatewayConfig()
    app = web.Application(
        middlewares=[_cors_middleware, _errors_middleware, _auth_middleware],
        client_max_size=config.max_body_bytes,
    )

    async def cors_headers(request: web.Request, response: web.StreamResponse) -> None:
        add_cors_headers(request, response, config.origins)

    app.on_response_prepare.append(cors_headers)
    app[CONFIG_KEY] = config
    app[SESSIONS_KEY] = sessions
    app[STATE_KEY] = GatewayState(queue=session_queue(sessions, config))
    app.router.add_get("/", _root)
    app.router.add_post("/api/generate", _ollama_generate)
    app.router.add_post("/api/chat", _ollama_chat)
    app.router.add_get("/api/tags", _ollama_tags)
    app.router.add_get("/api/ps", _ollama_ps)
    app.router.add_get("/api/version", _ollama_version)
    app.router.add_post("/api/show", _ollama_show)
    app.router.add_post("/v1/chat/completions", _openai_chat)
    app.router.add_post("/v1/completions", _openai_completion)
    app.router.add_get("/v1/models", _openai_models)
    app.router.add_get("/v1/models/{model}", _openai_model_one)
    for path in ("/api/embed", "/api/embeddings", "/v1/embeddings"):
        app.router.add_post(path, _embeddings)
    return app
