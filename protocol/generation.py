"""What a leader asks of its executors beyond the prompt: generation options, output format, tools.

These values ride in the ``advertise`` (options, format, tools, tool choice), come back in the
``response`` (tool calls, done reason) and in ``join``/``presence`` (capabilities). Every value
is checked here, once, with limits, so a body that exists carries only bounded, JSON-able data:

* :class:`GenOptions` -- ``num_predict``, ``stop``, ``temperature``, ``seed``, ``top_p`` (the
  options both HTTP APIs share; ``None``/empty means "the model's default");
* :func:`check_format` -- ``None``, ``"json"`` or a JSON schema (a map, at most
  :data:`MAX_SCHEMA_CHARS` as compact JSON, nested at most :data:`MAX_DEPTH` deep);
* :func:`check_tools` -- tool definitions in the OpenAI/Ollama shape
  ``{"type": "function", "function": {"name", "description", "parameters"}}``;
* :func:`check_tool_calls` -- an executor's calls, ``{"name": str, "arguments": map}`` each.

Sans-IO like the rest of ``protocol``; errors are :class:`~protocol.errors.ProtocolError`
subclasses naming the field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from protocol.errors import MalformedError, OversizeError, RangeError

__all__ = [
    "CAPABILITIES",
    "DONE_REASONS",
    "MAX_CAPABILITIES",
    "MAX_NUM_PREDICT",
    "MAX_SCHEMA_CHARS",
    "MAX_STOP",
    "MAX_STOP_CHARS",
    "MAX_TOOLS",
    "MAX_TOOLS_CHARS",
    "MAX_TOOL_CALLS",
    "GenOptions",
    "check_capabilities",
    "check_format",
    "check_tool_calls",
    "check_tool_choice",
    "check_tools",
]

MAX_NUM_PREDICT = 8_192  # a response is at most 16 KiB of text anyway
MAX_STOP = 8  # OpenAI allows 4, Ollama any number: 8 covers every client seen
MAX_STOP_CHARS = 64
MAX_TEMPERATURE = 5.0
MAX_SCHEMA_CHARS = 8_192
MAX_DEPTH = 16
MAX_TOOLS = 16
MAX_TOOLS_CHARS = 16_384  # all definitions together, as compact JSON
MAX_TOOL_CALLS = 16
MAX_ARGUMENTS_CHARS = 8_192
MAX_TOOL_NAME = 64
MAX_CAPABILITIES = 8
MAX_CAPABILITY_CHARS = 32
DONE_REASONS = ("stop", "length")
# What a provider can do beyond plain completion (Ollama's capability names where they exist).
CAPABILITIES = ("completion", "tools", "json")
TOOL_CHOICES = ("auto", "required")
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_INT64 = 2**63


def _bad_type(name: str, expected: str, value: object) -> MalformedError:
    return MalformedError(
        f"expected {expected}, got {type(value).__name__}", field=name, reason="bad_type"
    )


def _json_size(name: str, value: object, depth: int = 0) -> int:
    """Check ``value`` is plain JSON data (str keys, finite numbers) and return its compact size."""
    if depth > MAX_DEPTH:
        raise OversizeError(f"nested deeper than {MAX_DEPTH}", field=name)
    if isinstance(value, Mapping):
        size = 2
        for key, item in value.items():
            if not isinstance(key, str):
                raise _bad_type(f"{name}.<key>", "str", key)
            size += len(key) + 4 + _json_size(name, item, depth + 1)
        return size
    if isinstance(value, list | tuple):
        return 2 + sum(_json_size(name, item, depth + 1) + 1 for item in value)
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, float) and not math.isfinite(value):
        raise RangeError("not finite", field=name)
    if value is None or isinstance(value, bool | int | float):
        return 5
    raise _bad_type(name, "JSON value", value)


def _json_map(name: str, value: object, max_chars: int) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad_type(name, "map", value)
    size = _json_size(name, value)
    if size > max_chars:
        raise OversizeError(f"about {size} chars of JSON > {max_chars}", field=name)
    return dict(value)


@dataclass(frozen=True, slots=True)
class GenOptions:
    """Sampling and length options for the executors (``None``/``()``: the model's default)."""

    num_predict: int | None = None
    stop: tuple[str, ...] = ()
    temperature: float | None = None
    seed: int | None = None
    top_p: float | None = None

    def __post_init__(self) -> None:
        if self.num_predict is not None:
            _int("options.num_predict", self.num_predict, 1, MAX_NUM_PREDICT)
        if self.seed is not None:
            _int("options.seed", self.seed, -_INT64, _INT64 - 1)
        for name, hi in (("temperature", MAX_TEMPERATURE), ("top_p", 1.0)):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _bad_type(f"options.{name}", "float", value)
            if not math.isfinite(value) or not 0.0 <= value <= hi:
                raise RangeError(f"{value} not in [0, {hi}]", field=f"options.{name}")
            object.__setattr__(self, name, float(value))
        if not isinstance(self.stop, list | tuple):
            raise _bad_type("options.stop", "list", self.stop)
        if len(self.stop) > MAX_STOP:
            raise OversizeError(f"{len(self.stop)} stop sequences > {MAX_STOP}", field="stop")
        for i, seq in enumerate(self.stop):
            if not isinstance(seq, str):
                raise _bad_type(f"options.stop[{i}]", "str", seq)
            if not seq or len(seq) > MAX_STOP_CHARS:
                raise RangeError(f"length must be 1..{MAX_STOP_CHARS}", field=f"options.stop[{i}]")
        object.__setattr__(self, "stop", tuple(self.stop))

    def to_wire(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"stop": list(self.stop)}

    @classmethod
    def from_wire(cls, data: object) -> GenOptions:
        """Strict like every body: exactly the known fields."""
        if isinstance(data, GenOptions):
            return data
        if not isinstance(data, Mapping):
            raise _bad_type("options", "map", data)
        names = {f.name for f in fields(cls)}
        if set(data) != names:
            odd = sorted(map(str, set(data) ^ names))
            raise MalformedError(f"fields {odd} wrong", field="options", reason="bad_fields")
        return cls(**data)

    def as_params(self) -> dict[str, Any]:
        """The options that are set, as an Ollama ``options`` map."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: (list(v) if k == "stop" else v) for k, v in out.items() if v not in (None, ())}


def _int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad_type(name, "int", value)
    if not lo <= value <= hi:
        raise RangeError(f"{value} not in [{lo}, {hi}]", field=name)
    return value


def check_format(value: object) -> str | dict[str, Any] | None:
    """``None`` (free text), ``"json"`` (any JSON value) or a JSON schema map."""
    if value is None or value == "json":
        return value  # type: ignore[return-value]
    if isinstance(value, str):
        raise RangeError(f"{value[:20]!r}: only 'json' or a schema", field="format")
    return _json_map("format", value, MAX_SCHEMA_CHARS)


def check_tools(value: object) -> tuple[dict[str, Any], ...]:
    """Tool definitions: at most :data:`MAX_TOOLS`, unique names, bounded JSON."""
    if not isinstance(value, list | tuple):
        raise _bad_type("tools", "list", value)
    if len(value) > MAX_TOOLS:
        raise OversizeError(f"{len(value)} tools > {MAX_TOOLS}", field="tools")
    if sum(_json_size("tools", t) for t in value) > MAX_TOOLS_CHARS:
        raise OversizeError(f"definitions longer than {MAX_TOOLS_CHARS} chars", field="tools")
    names: set[str] = set()
    out = []
    for i, tool in enumerate(value):
        where = f"tools[{i}]"
        tool = _json_map(where, tool, MAX_TOOLS_CHARS)
        if tool.get("type") != "function":
            raise RangeError("type must be 'function'", field=f"{where}.type")
        function = tool.get("function")
        if not isinstance(function, Mapping):
            raise _bad_type(f"{where}.function", "map", function)
        name = function.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise RangeError("name must match [A-Za-z0-9_.-]{1,64}", field=f"{where}.name")
        if name in names:
            raise RangeError(f"duplicate tool {name!r}", field=f"{where}.name")
        names.add(name)
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, Mapping):
            raise _bad_type(f"{where}.parameters", "map", parameters)
        description = function.get("description")
        if description is not None and not isinstance(description, str):
            raise _bad_type(f"{where}.description", "str", description)
        out.append(tool)
    return tuple(out)


def tool_names(tools: tuple[Mapping[str, Any], ...]) -> tuple[str, ...]:
    return tuple(t["function"]["name"] for t in tools)


def check_tool_choice(value: object, tools: tuple[Mapping[str, Any], ...]) -> str:
    """``"auto"``, ``"required"`` (some tool call) or the name of the tool that must be called."""
    if not isinstance(value, str):
        raise _bad_type("tool_choice", "str", value)
    if value in TOOL_CHOICES:
        if value == "required" and not tools:
            raise RangeError("'required' without tools", field="tool_choice")
        return value
    if value not in tool_names(tools):
        raise RangeError(f"{value[:MAX_TOOL_NAME]!r} is not an offered tool", field="tool_choice")
    return value


def check_tool_calls(value: object) -> tuple[dict[str, Any], ...]:
    """An executor's tool calls: ``{"name": str, "arguments": map}`` each, bounded."""
    if not isinstance(value, list | tuple):
        raise _bad_type("tool_calls", "list", value)
    if len(value) > MAX_TOOL_CALLS:
        raise OversizeError(f"{len(value)} calls > {MAX_TOOL_CALLS}", field="tool_calls")
    out = []
    for i, call in enumerate(value):
        where = f"tool_calls[{i}]"
        if not isinstance(call, Mapping):
            raise _bad_type(where, "map", call)
        if set(call) != {"name", "arguments"}:
            raise MalformedError("fields must be name, arguments", field=where, reason="bad_fields")
        name = call["name"]
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise RangeError("name must match [A-Za-z0-9_.-]{1,64}", field=f"{where}.name")
        arguments = _json_map(f"{where}.arguments", call["arguments"], MAX_ARGUMENTS_CHARS)
        out.append({"name": name, "arguments": arguments})
    return tuple(out)


def check_capabilities(value: object) -> tuple[str, ...]:
    """A provider's capability names (unknown names allowed: newer peers may add some)."""
    if not isinstance(value, list | tuple):
        raise _bad_type("capabilities", "list", value)
    if len(value) > MAX_CAPABILITIES:
        raise OversizeError(f"{len(value)} > {MAX_CAPABILITIES}", field="capabilities")
    for i, name in enumerate(value):
        if not isinstance(name, str):
            raise _bad_type(f"capabilities[{i}]", "str", name)
        if not name or len(name) > MAX_CAPABILITY_CHARS:
            raise RangeError(f"1..{MAX_CAPABILITY_CHARS} chars", field=f"capabilities[{i}]")
    return tuple(value)


def check_done_reason(value: object) -> str:
    if value not in DONE_REASONS:
        raise RangeError(f"{value!r} not one of {DONE_REASONS}", field="done_reason")
    return value  # type: ignore[return-value]


def compact_json(value: object) -> str:
    """Compact, key-sorted JSON (how tool arguments are shown to judges and clients)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
