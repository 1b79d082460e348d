"""Reading requests: JSON bodies within limits, the model name, chat history -> one prompt."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from node.gateway.config import CONFIG_KEY, SESSIONS_KEY, SWARM_MODEL
from node.gateway.errors import ApiError, too_large

log = logging.getLogger(__name__)


async def read_json(request: web.Request) -> dict[str, Any]:
    limit = request.app[CONFIG_KEY].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, too_large(limit), "body_too_large")
    timeout = request.app[CONFIG_KEY].body_timeout_s
    try:
        async with asyncio.timeout(timeout):
            raw = await request.read()  # aiohttp enforces client_max_size for chunked bodies too
    except TimeoutError:
        raise ApiError(
            408, f"request body not received within {timeout:g}s (client too slow)", "timeout"
        ) from None
    if not raw.strip():
        raise ApiError(400, "request body is empty; expected a JSON object")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"invalid JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body


def optional_field(
    body: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str
) -> Any:
    value = body.get(key)
    if value is not None and not isinstance(value, kind):
        raise ApiError(400, f"'{key}' must be {what}")
    return value


def model_of(request: web.Request, body: Mapping[str, Any]) -> str:
    """The requested model name, which must be one this gateway serves (else 404)."""
    model = body.get("model")
    if model is None or model == "":
        raise ApiError(400, "'model' is required (use 'swarm')")
    if not isinstance(model, str):
        raise ApiError(400, "'model' must be a string")
    if model not in served_models(request.app):
        also = ""
        if model in provider_models_of(request.app).values():
            also = " (providers run it, but every answer comes from a whole swarm session)"
        raise ApiError(
            404,
            f"model '{model}' not found; this endpoint serves '{SWARM_MODEL}'{also}",
            "model_not_found",
        )
    return model


def served_models(app: web.Application) -> set[str]:
    # Only the swarm itself: a request naming a provider's model would still be answered by
    # whichever providers join (any model), so listing those names would mislead clients.
    return {SWARM_MODEL, f"{SWARM_MODEL}:latest"}


def capabilities_of(app: web.Application) -> set[str] | None:
    """What the providers seen can do (tools, json); ``None`` when the swarm cannot tell."""
    getter = getattr(app[SESSIONS_KEY], "capabilities", None)
    if getter is None:
        return None
    try:
        return set(getter())
    except Exception:
        log.exception("gateway: capabilities() failed")
        return None


def provider_models_of(app: web.Application) -> Mapping[str, str]:
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
    a longer history becomes a role-labelled transcript ending with an ``Assistant:`` cue. An
    assistant's tool calls are shown as ``[called name({...})]`` lines, a tool's result as a
    ``Tool (name):`` turn. When the transcript exceeds ``limit`` characters the oldest
    non-system turns are dropped (the latest turn always stays), as a chat client with a
    context window would.
    """
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' is required: a non-empty list of {role, content}")
    turns: list[tuple[str, str, str]] = []  # (role, label, text)
    call_names: dict[str, str] = {}  # OpenAI tool_call_id -> function name
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
        text = _message_text(message.get("content"), i)
        label = role.capitalize()
        if role == "assistant" and message.get("tool_calls"):
            text = "\n".join(
                filter(None, [text, *_calls_text(message["tool_calls"], i, call_names)])
            )
        if role == "tool":
            name = message.get("tool_name") or message.get("name")
            name = name or call_names.get(str(message.get("tool_call_id")))
            label = f"Tool ({name})" if isinstance(name, str) and name else "Tool"
        turns.append((role, label, text))
    if not any(role == "user" and text.strip() for role, _, text in turns):
        raise ApiError(400, "'messages' needs at least one non-empty user message")
    prompt = _transcript(turns)
    while limit is not None and len(prompt) > limit:
        droppable = [i for i, (role, _, _) in enumerate(turns[:-1]) if role != "system"]
        if not droppable:
            break  # only the latest turn (and system rules) left: the caller reports 413
        del turns[droppable[0]]
        prompt = _transcript(turns)
    return prompt


def _calls_text(calls: Any, index: int, names: dict[str, str]) -> list[str]:
    """An assistant's earlier tool calls (either API's shape) as transcript lines."""
    if not isinstance(calls, list):
        raise ApiError(400, f"messages[{index}].tool_calls must be a list")
    lines = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ApiError(400, f"messages[{index}].tool_calls: each needs function.name")
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False, sort_keys=True)
        if isinstance(call.get("id"), str):
            names[call["id"]] = function["name"]
        lines.append(f"[called {function['name']}({arguments})]")
    return lines


def _transcript(turns: list[tuple[str, str, str]]) -> str:
    if len(turns) == 1:
        return turns[0][2]
    lines = [f"{label}: {text}" for _, label, text in turns]
    return "\n\n".join([*lines, "Assistant:"])


def prompt_limit(request: web.Request) -> int:
    return request.app[CONFIG_KEY].max_prompt_chars


def check_prompt(request: web.Request, prompt: str) -> str:
    limit = prompt_limit(request)
    if len(prompt) > limit:
        raise ApiError(413, f"prompt too long ({len(prompt)} characters, limit {limit})")
    return prompt


def stream_flag(body: Mapping[str, Any], default: bool) -> bool:
    value = body.get("stream", default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError(400, "'stream' must be true or false")
    return value
