"""The swarm as an Ollama- and OpenAI-compatible HTTP endpoint (aiohttp, asyncio side of the bridge).

Theory of operation: every completion request becomes one swarm session run as leader through a
narrow :class:`SwarmSessions` interface (``run(prompt, ...) -> SwarmResult``). The swarm produces
the whole answer at once, so a streamed reply is the final text cut into word-sized chunks.

Status codes matter to clients, but so do early bytes (clients and proxies time out on silent
connections). A streamed reply therefore holds its headers back only until the session has its
participants (the ``on_stage`` callback reports a stage past joining) or ``head_start_s`` elapses,
whichever comes first: "not enough providers" and other early failures still get a real 503;
anything that fails later is reported inside the stream in the API's own error shape. While the
session runs, keep-alive records (an empty Ollama chunk / an SSE comment) keep the line warm.

A request that disconnects cancels its handler (``handler_cancellation=True``), and the handler
cancels its session: parallel requests each own one session task, nothing is shared.

Public API: :func:`make_app` (the aiohttp application), :func:`serve_swarm` (bind and serve a
:class:`SwarmSessions`), :func:`start_gateway` (the ``rnet node --serve ADDR`` hook: wraps a
running ``NodeRuntime``), :class:`GatewayHandle` (``url``, ``port``, ``await close()``).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from aiohttp import web

from protocol.messages import AGGREGATORS, MAX_PROMPT_CHARS

log = logging.getLogger(__name__)

SWARM_MODEL = "swarm"
# Clients (Open WebUI, oterm) gate features on the Ollama version they talk to: report the API
# level implemented here, and our own version next to it.
OLLAMA_API_VERSION = "0.12.0"
RNET_VERSION = "0.1.0"
DEFAULT_LISTEN = "127.0.0.1:11500"
DEFAULT_MAX_BODY = 1024 * 1024
# Stages in which the leader has its participants (roles assigned): a streamed reply may commit
# its headers then. Before (advertise) and after (done, aborted) it waits for the outcome.
ASSIGNED_STAGES = frozenset({"execute", "verify", "finalize"})


# --------------------------------------------------------------------------------------------
# The interface to the sessions engine


@dataclass(frozen=True, slots=True)
class SwarmResult:
    """The outcome of one swarm session, as the gateway reports it.

    Peer ids are base58 strings. ``score`` is the winner's aggregated score; ``averages`` maps
    executor -> aggregated score; ``scores`` executor -> verifier -> score (None = missing);
    ``missing`` says what did not arrive; ``timings`` stage -> milliseconds; ``models`` peer ->
    model name of every participant that reported one.
    """

    task: str
    winner: str
    score: float
    text: str
    averages: Mapping[str, float] = field(default_factory=dict)
    scores: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)
    missing: Any = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)
    models: Mapping[str, str] = field(default_factory=dict)
    aggregator: str = "mean"

    def metadata(self) -> dict[str, Any]:
        """The session's metadata as the extra ``swarm`` field of a reply (JSON-able)."""
        data = asdict(self)
        data.pop("text")
        return json.loads(json.dumps(data, default=str))


class SwarmUnavailable(Exception):
    """The swarm could not answer: not enough providers, deadline passed, empty result.

    ``reason`` is the human sentence sent to the client; ``code`` a short machine word
    (``not_enough_providers`` | ``deadline`` | ``empty_result`` | ``unavailable``).
    """

    def __init__(self, reason: str, code: str = "unavailable") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


StageCallback = Callable[[str], None]


@runtime_checkable
class SwarmSessions(Protocol):
    """What the gateway needs from the node: run one session as leader, and the models seen."""

    async def run(
        self,
        prompt: str,
        *,
        providers: int,
        timeout_s: float,
        aggregator: str,
        on_stage: StageCallback | None = None,
    ) -> SwarmResult:
        """Run one session to its result; raise :class:`SwarmUnavailable` when there is none."""
        ...

    def provider_models(self) -> Mapping[str, str]:
        """peer id (base58) -> model name, for every provider seen in presence."""
        ...


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """How each request's session is run and how the server protects itself."""

    providers: int = 3
    timeout_s: float = 60.0
    aggregator: str = "mean"
    token: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY
    # A session's advertisement carries the prompt: the protocol's limit is ours.
    max_prompt_chars: int = MAX_PROMPT_CHARS
    # Longest a streamed reply holds its headers back to keep a real status code available.
    head_start_s: float = 3.0
    # Interval of keep-alive records while a streamed session runs.
    keepalive_s: float = 5.0
    # Extra time past timeout_s before the gateway gives up on a session that did not end itself.
    grace_s: float = 5.0

    def __post_init__(self) -> None:
        if self.providers < 2:
            raise ValueError("providers must be at least 2 (one executor and one verifier)")
        if self.aggregator not in AGGREGATORS:
            raise ValueError(f"unknown aggregator {self.aggregator!r}; one of {AGGREGATORS}")
        if not 0 < self.max_prompt_chars <= MAX_PROMPT_CHARS:
            raise ValueError(f"max_prompt_chars must be in 1..{MAX_PROMPT_CHARS}")
        if self.timeout_s <= 0:
            raise ValueError("timeout must be positive")
        if self.max_body_bytes < 1024:
            raise ValueError("max_body_bytes must be at least 1024")
        if self.token is not None and not self.token.strip():
            raise ValueError("token must not be empty")


# --------------------------------------------------------------------------------------------
# Errors in each API's own shape


class ApiError(Exception):
    """A request failure with its HTTP status; rendered in the shape of the API that was called."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    503: "service_unavailable",
}


def _is_openai(request: web.Request) -> bool:
    return request.path.startswith("/v1/") or request.path == "/v1"


def error_body(openai: bool, status: int, message: str, code: str | None = None) -> dict[str, Any]:
    """``{"error": "..."}`` for Ollama; ``{"error": {"message", "type", "param", "code"}}`` for OpenAI."""
    if openai:
        return {
            "error": {
                "message": message,
                "type": _OPENAI_ERROR_TYPES.get(status, "server_error"),
                "param": None,
                "code": code,
            }
        }
    return {"error": message}


def _error_response(request: web.Request, status: int, message: str, code: str | None = None):
    return web.json_response(error_body(_is_openai(request), status, message, code), status=status)


@web.middleware
async def _errors_middleware(request: web.Request, handler):
    """Every failure leaves as JSON in the caller's API shape; the server keeps serving."""
    try:
        return await handler(request)
    except ApiError as exc:
        if exc.status >= 500:
            log.warning("%s %s -> %d: %s", request.method, request.path, exc.status, exc.message)
        return _error_response(request, exc.status, exc.message, exc.code)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[CONFIG_KEY].max_body_bytes
        return _error_response(request, 413, _too_large(limit), "body_too_large")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = {404: f"no such endpoint: {request.method} {request.path}"}.get(
            exc.status, exc.reason
        )
        if exc.status == 405:
            message = f"method {request.method} not allowed on {request.path}"
        return _error_response(request, exc.status, message)
    except (asyncio.CancelledError, ConnectionResetError):
        raise  # the client is gone: nothing left to answer
    except Exception:
        log.exception("gateway: unhandled error on %s %s", request.method, request.path)
        return _error_response(request, 500, "internal error in the swarm gateway (see node log)")


def _too_large(limit: int) -> str:
    return f"request body too large (limit {limit} bytes)"


@web.middleware
async def _auth_middleware(request: web.Request, handler):
    token: str | None = request.app[CONFIG_KEY].token
    if token is None or request.path == "/":
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
        raise ApiError(401, "missing or wrong 'Authorization: Bearer <token>'", "invalid_api_key")
    return await handler(request)


# --------------------------------------------------------------------------------------------
# Request parsing


async def _read_json(request: web.Request) -> dict[str, Any]:
    limit = request.app[CONFIG_KEY].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, _too_large(limit), "body_too_large")
    raw = await request.read()  # aiohttp enforces client_max_size for chunked bodies too
    if not raw.strip():
        raise ApiError(400, "request body is empty; expected a JSON object")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"invalid JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body


def _optional(body: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = body.get(key)
    if value is not None and not isinstance(value, kind):
        raise ApiError(400, f"'{key}' must be {what}")
    return value


def _model_of(request: web.Request, body: Mapping[str, Any]) -> str:
    """The requested model name, which must be one this gateway serves (else 404)."""
    model = body.get("model")
    if model is None or model == "":
        raise ApiError(400, "'model' is required (use 'swarm')")
    if not isinstance(model, str):
        raise ApiError(400, "'model' must be a string")
    if model not in _served_models(request.app):
        raise ApiError(
            404,
            f"model '{model}' not found; this endpoint serves '{SWARM_MODEL}'",
            "model_not_found",
        )
    return model


def _served_models(app: web.Application) -> set[str]:
    # Providers' own models are aliases of the swarm: the answer always comes from a session.
    names = {SWARM_MODEL, f"{SWARM_MODEL}:latest"}
    names.update(_provider_models(app).values())
    return names


def _provider_models(app: web.Application) -> Mapping[str, str]:
    getter = getattr(app[SESSIONS_KEY], "provider_models", None)
    if getter is None:
        return {}
    try:
        return dict(getter())
    except Exception:
        log.exception("gateway: provider_models() failed")
        return {}


_ROLES = ("system", "user", "assistant", "tool")


def _message_text(content: Any, index: int) -> str:
    """Message content as text: a string, or OpenAI's list of ``{"type": "text"}`` parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise ApiError(400, f"messages[{index}]: only text content is supported")
            text = part.get("text")
            if not isinstance(text, str):
                raise ApiError(400, f"messages[{index}]: text part needs a string 'text'")
            parts.append(text)
        return "\n".join(parts)
    raise ApiError(400, f"messages[{index}].content must be a string")


def render_chat(messages: Any, limit: int | None = None) -> str:
    """Render a chat history into the single prompt a swarm session carries.

    A lone user message is passed through as is (small models answer a plain question best);
    a longer history becomes a role-labelled transcript ending with an ``Assistant:`` cue. When
    the transcript exceeds ``limit`` characters the oldest non-system turns are dropped (the
    latest turn always stays), as a chat client with a context window would.
    """
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' is required: a non-empty list of {role, content}")
    turns: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ApiError(400, f"messages[{i}] must be an object with 'role' and 'content'")
        role = message.get("role")
        if role == "developer":  # OpenAI's newer name for the system role
            role = "system"
        if role not in _ROLES:
            raise ApiError(400, f"messages[{i}].role must be one of {', '.join(_ROLES)}")
        if message.get("images"):
            raise ApiError(400, f"messages[{i}]: images are not supported by the swarm")
        turns.append((role, _message_text(message.get("content"), i)))
    if not any(role == "user" and text.strip() for role, text in turns):
        raise ApiError(400, "'messages' needs at least one non-empty user message")
    prompt = _transcript(turns)
    while limit is not None and len(prompt) > limit:
        droppable = [i for i, (role, _) in enumerate(turns[:-1]) if role != "system"]
        if not droppable:
            break  # only the latest turn (and system rules) left: the caller reports 413
        del turns[droppable[0]]
        prompt = _transcript(turns)
    return prompt


def _transcript(turns: list[tuple[str, str]]) -> str:
    if len(turns) == 1:
        return turns[0][1]
    lines = [f"{role.capitalize()}: {text}" for role, text in turns]
    return "\n\n".join([*lines, "Assistant:"])


def _prompt_limit(request: web.Request) -> int:
    return request.app[CONFIG_KEY].max_prompt_chars


def _check_prompt(request: web.Request, prompt: str) -> str:
    limit = _prompt_limit(request)
    if len(prompt) > limit:
        raise ApiError(413, f"prompt too long ({len(prompt)} characters, limit {limit})")
    return prompt


def _stream_flag(body: Mapping[str, Any], default: bool) -> bool:
    value = body.get("stream", default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError(400, "'stream' must be true or false")
    return value


_PIECE = re.compile(r"\s*\S+\s*|\s+")


def split_text(text: str) -> list[str]:
    """Cut the answer into word-sized pieces whose concatenation is exactly ``text``."""
    return _PIECE.findall(text)


# --------------------------------------------------------------------------------------------
# Reply dialects: one per endpoint, all fed the same session outcome


@dataclass(slots=True)
class _Timing:
    started_ns: int
    assigned_ns: int | None = None

    def durations(self, result: SwarmResult) -> dict[str, int]:
        now = time.monotonic_ns()
        total = now - self.started_ns
        load = (self.assigned_ns or self.started_ns) - self.started_ns
        return {"total_duration": total, "load_duration": load, "eval_duration": total - load}


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _word_count(text: str) -> int:
    # The swarm does not report tokens; a word count is the honest approximation.
    return len(text.split())


class _Dialect:
    """How one endpoint renders chunks, the final record, keep-alives and in-stream errors."""

    content_type = "application/x-ndjson"
    default_stream = True
    openai = False

    def __init__(self, model: str, prompt: str) -> None:
        self.model = model
        self.prompt = prompt

    def line(self, record: Mapping[str, Any]) -> bytes:
        return json.dumps(record, ensure_ascii=False).encode() + b"\n"

    def opening(self) -> bytes:
        return b""

    def keepalive(self) -> bytes:
        return self.line(self.chunk(""))

    def chunk(self, piece: str) -> dict[str, Any]:
        raise NotImplementedError

    def final(self, result: SwarmResult, timing: _Timing) -> dict[str, Any]:
        raise NotImplementedError

    def whole(self, result: SwarmResult, timing: _Timing) -> dict[str, Any]:
        raise NotImplementedError

    def stream_error(self, status: int, message: str, code: str | None) -> bytes:
        return self.line(error_body(self.openai, status, message, code))

    def closing(self) -> bytes:
        return b""

    def _ollama_stats(self, result: SwarmResult, timing: _Timing) -> dict[str, Any]:
        return {
            "done": True,
            "done_reason": "stop",
            **timing.durations(result),
            "prompt_eval_count": _word_count(self.prompt),
            "prompt_eval_duration": 0,
            "eval_count": _word_count(result.text),
            "swarm": result.metadata(),
        }


class _OllamaGenerate(_Dialect):
    def chunk(self, piece: str) -> dict[str, Any]:
        return {"model": self.model, "created_at": _now_iso(), "response": piece, "done": False}

    def final(self, result: SwarmResult, timing: _Timing) -> dict[str, Any]:
        return {**self.chunk(""), **self._ollama_stats(result, timing)}

    def whole(self, result: SwarmResult, timing: _Timing) -> dict[str, Any]:
        return {**self.chunk(result.text), **self._ollama_stats(result, timing)}


class _OllamaChat(_Dialect):
    def chunk(self, piece: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "created_at": _now_iso(),
            "message": {"role": "assistant", "content": piece},
            "done": False,
        }

    def final(self, result: SwarmResult, timing: _Timing) -> dict[str, Any]:
        # Ollama's last chat chunk carries a message too (empty content).
        return {**self.chunk(""), **self._ollama_stats(result, timing)}

    def whole(self, result: SwarmResult, timing: _Timing) -> dict[str, Any]:
        return {**self.chunk(result.text), **self._ollama_stats(result, timing)}


class _OpenAIChat(_Dialect):
    content_type = "text/event-stream"
    default_stream = False
    openai = True

    def __init__(self, model: str, prompt: str, include_usage: bool = False) -> None:
        super().__init__(model, prompt)
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.include_usage = include_usage

    def line(self, record: Mapping[str, Any]) -> bytes:
        return b"data: " + json.dumps(record, ensure_ascii=False).encode() + b"\n\n"

    def _envelope(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model}

    def _delta(self, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**self._envelope("chat.completion.chunk"), "choices": [choice]}

    def opening(self) -> bytes:
        return self.line(self._delta({"role": "assistant", "content": ""}, None))

    def keepalive(self) -> bytes:
        return b": keep-alive\n\n"  # an SSE comment: every client skips it

    def chunk(self, piece: str) -> dict[str, Any]:
        return self._delta({"content": piece}, None)

    def _usage(self, result: SwarmResult) -> dict[str, int]:
        prompt, completion = _word_count(self.prompt), _word_count(result.text)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def final(self, result: SwarmResult, timing: _Timing) -> dict[str, Any]:
        return {**self._delta({}, "stop"), "swarm": result.metadata()}

    def closing_records(self, result: SwarmResult) -> list[dict[str, Any]]:
        if not self.include_usage:
            return []
        return [
            {**self._envelope("chat.completion.chunk"), "choices": [], "usage": self._usage(result)}
        ]

    def closing(self) -> bytes:
        return b"data: [DONE]\n\n"

    def whole(self, result: SwarmResult, timing: _Timing) -> dict[str, Any]:
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": result.text, "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
        return {
            **self._envelope("chat.completion"),
            "choices": [choice],
            "usage": self._usage(result),
            "system_fingerprint": f"rnet-{RNET_VERSION}",
            "swarm": result.metadata(),
        }


# --------------------------------------------------------------------------------------------
# Running one session per request


def _unavailable(exc: SwarmUnavailable) -> ApiError:
    return ApiError(503, exc.reason, exc.code)


async def _outcome(task: asyncio.Task[SwarmResult]) -> SwarmResult:
    """The finished session's result, or the ApiError that describes its failure."""
    try:
        result = task.result()
    except SwarmUnavailable as exc:
        raise _unavailable(exc) from None
    if not isinstance(result, SwarmResult):
        raise ApiError(500, f"sessions engine returned {type(result).__name__}, not a result")
    if not result.text:
        raise ApiError(503, "the swarm returned an empty answer", "empty_result")
    return result


async def _answer(request: web.Request, dialect: _Dialect, stream: bool) -> web.StreamResponse:
    """Run one session for this request and reply (whole or streamed) in the dialect's shape."""
    cfg: GatewayConfig = request.app[CONFIG_KEY]
    sessions: SwarmSessions = request.app[SESSIONS_KEY]
    timing = _Timing(started_ns=time.monotonic_ns())
    assigned = asyncio.Event()

    def on_stage(stage: str) -> None:
        if str(stage) in ASSIGNED_STAGES and not assigned.is_set():
            timing.assigned_ns = time.monotonic_ns()
            assigned.set()

    task: asyncio.Task[SwarmResult] = asyncio.ensure_future(
        sessions.run(
            dialect.prompt,
            providers=cfg.providers,
            timeout_s=cfg.timeout_s,
            aggregator=cfg.aggregator,
            on_stage=on_stage,
        )
    )
    deadline = asyncio.get_running_loop().time() + cfg.timeout_s + cfg.grace_s
    try:
        if not stream:
            await _wait_task(task, deadline)
            return web.json_response(dialect.whole(await _outcome(task), timing))
        try:
            return await _stream(request, dialect, task, assigned, deadline, timing)
        except ConnectionResetError:
            # The client hung up mid-stream; the session is cancelled below.
            log.info("gateway: client left %s mid-stream; cancelling its session", request.path)
            raise
    finally:
        await _cancel(task)


async def _wait_task(task: asyncio.Task[SwarmResult], deadline: float) -> None:
    remaining = deadline - asyncio.get_running_loop().time()
    done, _ = await asyncio.wait({task}, timeout=max(0.0, remaining))
    if not done:
        raise ApiError(503, "the swarm session passed its deadline without a result", "deadline")


async def _cancel(task: asyncio.Task[Any]) -> None:
    """Cancel a session that is still running (client gone, deadline) and wait for it to unwind."""
    if not task.done():
        task.cancel()
        await asyncio.wait({task})
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        if not isinstance(exc, SwarmUnavailable):
            log.error("gateway: session failed", exc_info=exc)


async def _stream(
    request: web.Request,
    dialect: _Dialect,
    task: asyncio.Task[SwarmResult],
    assigned: asyncio.Event,
    deadline: float,
    timing: _Timing,
) -> web.StreamResponse:
    cfg: GatewayConfig = request.app[CONFIG_KEY]
    loop = asyncio.get_running_loop()
    # Hold the headers until the session has participants (or head_start_s passed), so an early
    # failure still leaves with a real status code.
    waiter = asyncio.ensure_future(assigned.wait())
    try:
        await asyncio.wait({task, waiter}, timeout=cfg.head_start_s, return_when="FIRST_COMPLETED")
    finally:
        waiter.cancel()
    result = await _outcome(task) if task.done() else None

    response = web.StreamResponse(
        headers={"Content-Type": dialect.content_type, "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    await response.write(dialect.opening())
    while result is None:
        remaining = deadline - loop.time()
        if remaining <= 0:
            await _cancel(task)
            await _finish_with_error(
                response, dialect, ApiError(503, "deadline passed", "deadline")
            )
            return response
        done, _ = await asyncio.wait({task}, timeout=min(cfg.keepalive_s, remaining))
        if not done:
            await response.write(dialect.keepalive())
            continue
        try:
            result = await _outcome(task)
        except ApiError as exc:
            await _finish_with_error(response, dialect, exc)
            return response
    for piece in split_text(result.text):
        await response.write(dialect.line(dialect.chunk(piece)))
    await response.write(dialect.line(dialect.final(result, timing)))
    if isinstance(dialect, _OpenAIChat):
        for record in dialect.closing_records(result):
            await response.write(dialect.line(record))
    await response.write(dialect.closing())
    await response.write_eof()
    return response


async def _finish_with_error(
    response: web.StreamResponse, dialect: _Dialect, exc: ApiError
) -> None:
    log.warning("gateway: streamed session failed after headers: %s", exc.message)
    await response.write(dialect.stream_error(exc.status, exc.message, exc.code))
    await response.write(dialect.closing())
    await response.write_eof()


# --------------------------------------------------------------------------------------------
# Handlers


async def _ollama_generate(request: web.Request) -> web.StreamResponse:
    body = await _read_json(request)
    model = _model_of(request, body)
    stream = _stream_flag(body, default=True)
    prompt = _optional(body, "prompt", str, "a string")
    if not prompt or not prompt.strip():
        raise ApiError(400, "'prompt' is required: a non-empty string")
    system = _optional(body, "system", str, "a string")
    if body.get("images"):
        raise ApiError(400, "images are not supported by the swarm")
    if system:
        prompt = f"System: {system}\n\nUser: {prompt}\n\nAssistant:"
    return await _answer(request, _OllamaGenerate(model, _check_prompt(request, prompt)), stream)


async def _ollama_chat(request: web.Request) -> web.StreamResponse:
    body = await _read_json(request)
    model = _model_of(request, body)
    stream = _stream_flag(body, default=True)
    prompt = _check_prompt(request, render_chat(body.get("messages"), _prompt_limit(request)))
    return await _answer(request, _OllamaChat(model, prompt), stream)


async def _openai_chat(request: web.Request) -> web.StreamResponse:
    body = await _read_json(request)
    model = _model_of(request, body)
    stream = _stream_flag(body, default=False)
    n = body.get("n", 1)
    if n not in (None, 1):
        raise ApiError(400, "'n' must be 1: the swarm returns one winning answer", "unsupported")
    options = _optional(body, "stream_options", dict, "an object") or {}
    prompt = _check_prompt(request, render_chat(body.get("messages"), _prompt_limit(request)))
    dialect = _OpenAIChat(model, prompt, include_usage=bool(options.get("include_usage")))
    return await _answer(request, dialect, stream)


def _details(family: str) -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "swarm",
        "family": family,
        "families": [family],
        "parameter_size": "",
        "quantization_level": "",
    }


async def _ollama_tags(request: web.Request) -> web.Response:
    now = _now_iso()
    models = [
        {
            "name": SWARM_MODEL,
            "model": SWARM_MODEL,
            "modified_at": now,
            "size": 0,
            "digest": "",
            "details": _details("swarm"),
        }
    ]
    by_model: dict[str, list[str]] = {}
    for peer, name in sorted(_provider_models(request.app).items()):
        by_model.setdefault(name, []).append(peer)
    for name, peers in sorted(by_model.items()):
        family = name.split(":", 1)[0]
        models.append(
            {
                "name": name,
                "model": name,
                "modified_at": now,
                "size": 0,
                "digest": "",
                "details": _details(family),
                "swarm": {"providers": peers, "answered_by": SWARM_MODEL},
            }
        )
    return web.json_response({"models": models})


async def _ollama_version(request: web.Request) -> web.Response:
    return web.json_response({"version": OLLAMA_API_VERSION, "rnet_version": RNET_VERSION})


async def _ollama_show(request: web.Request) -> web.Response:
    body = await _read_json(request)
    if "model" not in body and isinstance(body.get("name"), str):
        body["model"] = body["name"]  # older clients send "name"
    model = _model_of(request, body)
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
                "swarm.provider_models": sorted(set(_provider_models(request.app).values())),
            },
            "capabilities": ["completion"],
            "modified_at": _now_iso(),
        }
    )


async def _ollama_ps(request: web.Request) -> web.Response:
    return web.json_response({"models": []})


def _openai_model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "rnet-swarm"}


async def _openai_models(request: web.Request) -> web.Response:
    names = [SWARM_MODEL, *sorted(set(_provider_models(request.app).values()))]
    return web.json_response({"object": "list", "data": [_openai_model(n) for n in names]})


async def _openai_model_one(request: web.Request) -> web.Response:
    name = request.match_info["model"]
    if name not in _served_models(request.app):
        raise ApiError(404, f"model '{name}' not found", "model_not_found")
    return web.json_response(_openai_model(name))


async def _root(request: web.Request) -> web.Response:
    # The Ollama CLI and several clients probe "/" to see whether a server is up.
    return web.Response(text="rnet swarm gateway is running (Ollama and OpenAI APIs)")


# --------------------------------------------------------------------------------------------
# Application and server

CONFIG_KEY: web.AppKey[GatewayConfig] = web.AppKey("rnet_gateway_config", GatewayConfig)
SESSIONS_KEY: web.AppKey[Any] = web.AppKey("rnet_gateway_sessions", object)


def make_app(sessions: SwarmSessions, config: GatewayConfig | None = None) -> web.Application:
    """The gateway as an aiohttp application serving ``sessions`` (used by tests and servers)."""
    config = config or GatewayConfig()
    app = web.Application(
        middlewares=[_errors_middleware, _auth_middleware],
        client_max_size=config.max_body_bytes,
    )
    app[CONFIG_KEY] = config
    app[SESSIONS_KEY] = sessions
    app.router.add_get("/", _root)
    app.router.add_post("/api/generate", _ollama_generate)
    app.router.add_post("/api/chat", _ollama_chat)
    app.router.add_get("/api/tags", _ollama_tags)
    app.router.add_get("/api/ps", _ollama_ps)
    app.router.add_get("/api/version", _ollama_version)
    app.router.add_post("/api/show", _ollama_show)
    app.router.add_post("/v1/chat/completions", _openai_chat)
    app.router.add_get("/v1/models", _openai_models)
    app.router.add_get("/v1/models/{model}", _openai_model_one)
    return app


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``, ``:PORT`` or ``PORT`` for loopback) -> (host, port)."""
    text = listen.strip()
    if text.startswith("http://"):
        text = text[len("http://") :].rstrip("/")
    host, port_text = "127.0.0.1", text
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
        host = host or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"bad listen address {listen!r}: expected HOST:PORT") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"bad listen address {listen!r}: port out of range")
    if not host:
        raise ValueError(f"bad listen address {listen!r}: empty host")
    return host, port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token (raises ValueError)."""
    if not is_loopback(host) and not token:
        raise ValueError(
            f"listening on {host} exposes the swarm beyond this machine: "
            "set --token (clients then send 'Authorization: Bearer <token>')"
        )


@dataclass(slots=True)
class GatewayHandle:
    """A running gateway: its base URL, and ``await close()`` to stop it."""

    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve_swarm(
    sessions: SwarmSessions, listen: str = DEFAULT_LISTEN, config: GatewayConfig | None = None
) -> GatewayHandle:
    """Bind ``listen`` and serve ``sessions`` on the running asyncio loop until ``close()``.

    Raises ValueError for a bad address or a non-loopback address without a token, OSError when
    the port cannot be bound.
    """
    config = config or GatewayConfig()
    host, port = parse_listen(listen)
    check_exposure(host, config.token)
    # handler_cancellation: a client that hangs up cancels its handler and thereby its session.
    runner = web.AppRunner(
        make_app(sessions, config), handler_cancellation=True, shutdown_timeout=2.0, access_log=None
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    # With port 0 the OS picked one: report the bound address, not the requested one.
    bound = next((addr[1] for addr in runner.addresses if isinstance(addr, tuple)), port)
    handle = GatewayHandle(runner=runner, host=host, port=bound)
    log.info("gateway: serving Ollama and OpenAI APIs at %s", handle.url)
    return handle


# --------------------------------------------------------------------------------------------
# The node side: a running NodeRuntime as SwarmSessions


class RuntimeSwarm:
    """:class:`SwarmSessions` over a running ``NodeRuntime`` and its sessions engine.

    Each ``run`` is one ``SessionEngine.run_pipe`` (node/sessions.py): this node advertises,
    waits for ``providers`` joins (or the join deadline), assigns, collects and finalizes.
    Cancelling ``run`` (client gone) cancels the trio side, which aborts the session visibly.
    """

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    def _engine(self) -> Any:
        engine = getattr(self.runtime, "sessions", None)
        if engine is None:
            raise SwarmUnavailable(
                "this node runs no sessions engine (start it as a provider node)", "unavailable"
            )
        return engine

    def provider_models(self) -> Mapping[str, str]:
        me = getattr(self.runtime, "peer_id_str", "")
        return {
            peer.peer_id: peer.model
            for peer in self.runtime.provider_peers()
            if peer.model and peer.peer_id != me
        }

    async def run(
        self,
        prompt: str,
        *,
        providers: int,
        timeout_s: float,
        aggregator: str,
        on_stage: StageCallback | None = None,
    ) -> SwarmResult:
        from node.sessions import SessionFailed

        engine = self._engine()
        try:
            result = await engine.run_pipe(
                prompt, providers, timeout_s=timeout_s, aggregator=aggregator, on_stage=on_stage
            )
        except SessionFailed as exc:
            raise SwarmUnavailable(exc.reason, exc.code) from None
        return self._swarm_result(result)

    def _swarm_result(self, result: Any) -> SwarmResult:
        """The engine's ``result`` event as the gateway's SwarmResult (models from presence)."""
        known = self.provider_models()
        participants = set(result.averages)
        for row in result.scores.values():
            participants.update(row)
        return SwarmResult(
            task=result.task,
            winner=result.winner or "",
            score=result.score if result.score is not None else 0.0,
            text=result.text,
            averages=dict(result.averages),
            scores={e: dict(row) for e, row in result.scores.items()},
            missing=result.missing,
            timings=dict(result.timings),
            models={p: known[p] for p in sorted(participants) if p in known},
            aggregator=result.aggregator,
        )


async def start_gateway(
    runtime: Any, listen: str = DEFAULT_LISTEN, token: str | None = None, **options: Any
) -> GatewayHandle:
    """Serve a started ``NodeRuntime`` as an Ollama/OpenAI endpoint (``rnet node --serve``).

    ``options`` are :class:`GatewayConfig` fields (providers, timeout_s, aggregator, ...).
    Call on the runtime's asyncio loop after ``runtime.start()``; ``await handle.close()``
    before ``runtime.aclose()``. Raises ValueError (bad address, public bind without token)
    or OSError (port in use).
    """
    config = GatewayConfig(token=token, **options)
    return await serve_swarm(RuntimeSwarm(runtime), listen, config)
