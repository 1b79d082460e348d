"""Generation parameters of both APIs -> one :class:`~node.gateway.swarm.Generation`.

Every field a client may send is in one of three groups, and the README's table lists them:
honoured (travels to the executors: length, stop, sampling, format, tools), refused with a 400
that says why (things the swarm cannot do: embeddings-like or multi-choice features), or accepted
but not applied (tuning knobs of a single server: ``num_ctx``, penalties...), which are named in
the ``X-Rnet-Ignored`` response header and in ``swarm.ignored`` so nothing is dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from node.gateway.errors import ApiError
from node.gateway.swarm import Generation
from protocol.errors import ProtocolError
from protocol.generation import (
    MAX_NUM_PREDICT,
    GenOptions,
    check_format,
    check_tool_choice,
    check_tools,
)

# Ollama `options` the swarm applies; every other option is accepted and reported as ignored.
_OLLAMA_HONOURED = ("num_predict", "stop", "temperature", "seed", "top_p")
# Top-level fields with no effect on the answer (transport, bookkeeping): no report needed.
_HARMLESS = frozenset(
    {"model", "prompt", "messages", "stream", "stream_options", "options", "format", "tools",
     "tool_choice", "system", "images", "n", "user", "keep_alive", "parallel_tool_calls",
     "max_tokens", "max_completion_tokens", "stop", "temperature", "seed", "top_p",
     "response_format", "metadata", "store", "service_tier", "think", "logprobs",
     "top_logprobs", "suffix", "echo", "best_of"}
)  # fmt: skip


def _protocol(call: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a protocol validator; its refusal becomes a 400 naming the field."""
    try:
        return call(*args, **kwargs)
    except ProtocolError as exc:
        raise ApiError(400, f"invalid {exc.field or 'request'}: {exc}") from None


def _length(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"'{name}' must be an integer")
    if value < 0:
        return None  # Ollama: -1 = no limit, -2 = fill the context
    if value == 0:
        raise ApiError(400, f"'{name}' must be at least 1")
    return min(value, MAX_NUM_PREDICT)  # a response is at most 16 KiB anyway


def _stop(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(s for s in value if s)
    raise ApiError(400, f"'{name}' must be a string or a list of strings")


def _options(
    num_predict: Any, stop: Any, body: Mapping[str, Any], names: tuple[str, str]
) -> GenOptions:
    return _protocol(
        GenOptions,
        num_predict=_length(num_predict, names[0]),
        stop=_stop(stop, names[1]),
        temperature=body.get("temperature"),
        seed=body.get("seed"),
        top_p=body.get("top_p"),
    )


def _ignored_top_level(body: Mapping[str, Any]) -> list[str]:
    # Falsy values (0, "", [], {}) are every client's defaults: they change nothing.
    return sorted(k for k, v in body.items() if k not in _HARMLESS and v)


def _refuse_common(body: Mapping[str, Any]) -> None:
    if body.get("logprobs"):
        raise ApiError(400, "'logprobs' is not supported: the swarm returns no token probabilities")
    if body.get("think"):
        raise ApiError(400, "swarm does not support thinking ('think')")


def ollama_generation(body: Mapping[str, Any], *, chat: bool) -> tuple[Generation, list[str]]:
    """Ollama ``options``, ``format`` and (chat) ``tools`` -> (Generation, ignored field names)."""
    _refuse_common(body)
    if not chat and body.get("suffix"):
        raise ApiError(400, "swarm does not support insert ('suffix')")
    options = body.get("options") or {}
    if not isinstance(options, Mapping):
        raise ApiError(400, "'options' must be an object")
    honoured = _options(
        options.get("num_predict"), options.get("stop"), options, ("num_predict", "stop")
    )
    fmt = body.get("format")
    fmt = _protocol(check_format, None if fmt == "" else fmt)
    tools = _protocol(check_tools, body.get("tools") or []) if chat else ()
    # LangChain sends every option, most of them null: only values that were set count.
    ignored = [
        f"options.{k}"
        for k in sorted(options)
        if k not in _OLLAMA_HONOURED and options[k] is not None
    ]
    ignored += _ignored_top_level(body)
    return Generation(honoured, fmt, tools), ignored


def _response_format(value: Any) -> str | dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ApiError(400, "'response_format' must be an object")
    kind = value.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        spec = value.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if not isinstance(schema, Mapping):
            raise ApiError(400, "'response_format.json_schema.schema' must be an object")
        return _protocol(check_format, schema)
    raise ApiError(400, f"'response_format.type' {kind!r} is not supported")


def _tool_choice(value: Any, tools: tuple[Mapping[str, Any], ...]) -> str | None:
    """OpenAI ``tool_choice`` -> ours; ``None`` for "none" (then no tools travel)."""
    if value is None or value == "auto":
        return "auto"
    if value == "none":
        return None
    if isinstance(value, Mapping):
        function = value.get("function")
        value = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(value, str):
            raise ApiError(400, "'tool_choice' must name a function")
    return _protocol(check_tool_choice, value, tools)


def openai_generation(body: Mapping[str, Any], *, chat: bool) -> tuple[Generation, list[str]]:
    """OpenAI chat/completions fields -> (Generation, ignored field names)."""
    _refuse_common(body)
    if body.get("functions") or body.get("function_call"):
        raise ApiError(400, "'functions' is the deprecated form: send 'tools' instead")
    if not chat and (body.get("echo") or body.get("suffix") or body.get("best_of", 1) != 1):
        raise ApiError(400, "'echo', 'suffix' and 'best_of' are not supported by the swarm")
    modalities = body.get("modalities")
    if modalities not in (None, ["text"]) or body.get("audio"):
        raise ApiError(400, "the swarm answers in text only ('modalities', 'audio')")
    limit = body.get("max_completion_tokens")
    name = "max_completion_tokens"
    if limit is None:
        limit, name = body.get("max_tokens"), "max_tokens"
    options = _options(limit, body.get("stop"), body, (name, "stop"))
    fmt = _response_format(body.get("response_format")) if chat else None
    tools = _protocol(check_tools, body.get("tools") or []) if chat else ()
    choice = _tool_choice(body.get("tool_choice"), tools) if chat else "auto"
    if choice is None:
        tools, choice = (), "auto"
    return Generation(options, fmt, tools, choice), _ignored_top_level(body)


def arguments_json(arguments: Any) -> str:
    """Tool call arguments as OpenAI sends them: a JSON string."""
    return json.dumps(arguments, ensure_ascii=False)
