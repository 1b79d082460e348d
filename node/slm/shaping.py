"""How the simulated backend honours generation options: token cuts, stop sequences, JSON that
fits a schema, plausible tool calls. Pure functions (the sim stays deterministic).

Simulated tokens are whitespace-separated words; the simulation label (``[simulated ...]``)
counts as one token and is never cut, so a simulated answer stays labelled at any length.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from node.slm.base import GenParams

_WORD = re.compile(r"[A-Za-z0-9]+")
_TOOL_TURN = re.compile(r"(?m)^Tool(?: \([^)]*\))?: ")
_USER_TURN = re.compile(r"(?m)^User: ")


def apply_stop(text: str, stop: Sequence[str] | None) -> str:
    """``text`` up to (not including) the first stop sequence, as a server stops generating."""
    cut = len(text)
    for seq in stop or ():
        at = text.find(seq)
        if at != -1:
            cut = min(cut, at)
    return text[:cut]


def cut_tokens(text: str, num_predict: int | None, label: str = "") -> tuple[str, bool, int]:
    """(text cut to ``num_predict`` simulated tokens, whether it was cut, tokens kept).
    Whitespace between kept words is kept as it was."""
    head = label if label and text.startswith(label) else ""
    words = list(re.finditer(r"\S+", text[len(head) :]))
    budget = len(words) if num_predict is None else max(0, num_predict - (1 if head else 0))
    if budget >= len(words):
        return text, False, len(words) + (1 if head else 0)
    end = len(head) + (words[budget - 1].end() if budget else 0)
    return text[:end].rstrip(), True, budget + (1 if head else 0)


def count_tokens(text: str) -> int:
    return len(text.split())


def _resolve(root: Mapping[str, Any], schema: Any) -> Any:
    for _ in range(8):  # a bounded chain of local $refs
        ref = schema.get("$ref") if isinstance(schema, Mapping) else None
        if not isinstance(ref, str):
            return schema
        name = ref.rsplit("/", 1)[-1]
        table = root.get("$defs") or root.get("definitions") or {}
        schema = root if ref == "#" else table.get(name, {})
    return {}


def instance_for(
    schema: Any, fill: str, root: Mapping[str, Any] | None = None, depth: int = 0
) -> Any:
    """A small JSON value that fits ``schema`` (the subset protocol.structured checks); the first
    string gets ``fill`` (the simulated answer, label included)."""
    root = root if root is not None else (schema if isinstance(schema, Mapping) else {})
    schema = _resolve(root, schema)
    if not isinstance(schema, Mapping) or depth > 8:
        return fill
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            usable = [
                o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")
            ]
            return instance_for((usable or options)[0], fill, root, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties") if isinstance(schema.get("properties"), Mapping) else {}
        return {k: instance_for(v, fill, root, depth + 1) for k, v in props.items()}
    if kind == "array":
        count = schema.get("minItems") if isinstance(schema.get("minItems"), int) else 1
        if isinstance(schema.get("maxItems"), int):
            count = min(count, schema["maxItems"])
        return [instance_for(schema.get("items", {}), fill, root, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = (
            low + (1 if "exclusiveMinimum" in schema else 0) if isinstance(low, int | float) else 0
        )
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    limit = schema.get("maxLength")
    text = fill if not isinstance(limit, int) else fill[:limit]
    low = schema.get("minLength")
    return text.ljust(low, ".") if isinstance(low, int) else text


def json_answer(fmt: str | Mapping[str, Any], answer: str) -> str:
    """The simulated answer as JSON: ``{"answer": ...}`` for ``"json"``, else fitting the schema."""
    if not isinstance(fmt, Mapping):
        return json.dumps({"answer": answer}, ensure_ascii=False)
    return json.dumps(instance_for(fmt, answer), ensure_ascii=False)


def last_turn_is_tool_result(prompt: str) -> bool:
    """Whether the conversation's latest turn is a tool's result (then: answer in text)."""
    tool = [m.start() for m in _TOOL_TURN.finditer(prompt)]
    user = [m.start() for m in _USER_TURN.finditer(prompt)]
    return bool(tool) and (not user or tool[-1] > user[-1])


def rank_tools(prompt: str, tools: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The tools, best match first: most words shared between the prompt and the tool's name
    and description (ties keep the offered order)."""
    words = {w.lower() for w in _WORD.findall(prompt)}

    def overlap(tool: Mapping[str, Any]) -> int:
        function = tool["function"]
        text = f"{function['name'].replace('_', ' ')} {function.get('description') or ''}"
        return len(words & {w.lower() for w in _WORD.findall(text)})

    return sorted(tools, key=overlap, reverse=True)


# How protocol.structured shows tools and calls to a judge (judged_prompt / judged_answer).
_TOOLS_NOTE = "\n\n(The assistant may call these tools:"
_OFFERED = re.compile(r"(?m)^- ([A-Za-z0-9_.\-]+): (.*)$")
_CALLED = re.compile(r"\[calls tool ([A-Za-z0-9_.\-]+) with arguments")


def tool_call_correct(question: str, answer: str) -> bool | None:
    """For a simulated judge: whether a judged tool call picked the best-matching offered tool
    (``None`` when ``answer`` calls no tool or no tools were offered)."""
    called = _CALLED.findall(answer)
    conversation, _, offered_text = question.partition(_TOOLS_NOTE)
    offered = [
        {"type": "function", "function": {"name": name, "description": about}}
        for name, about in _OFFERED.findall(offered_text)
    ]
    if not called or not offered:
        return None
    return called[0] == rank_tools(conversation, offered)[0]["function"]["name"]


def tool_call(
    prompt: str, tools: Sequence[Mapping[str, Any]], choice: str, correct: bool, rng: random.Random
) -> dict[str, Any]:
    """A plausible call: the tool whose name and description share most words with the prompt
    (another one when ``correct`` is False), arguments filled from the prompt's salient word."""
    ranked = rank_tools(prompt, tools)
    named = [t for t in tools if t["function"]["name"] == choice]
    if named:
        pick = named[0]
    elif correct or len(ranked) == 1:
        pick = ranked[0]
    else:
        pick = rng.choice(ranked[1:])
    salient = [w for w in _WORD.findall(prompt) if w[:1].isupper()] or _WORD.findall(prompt)
    fill = max(salient, key=len) if salient else "value"
    arguments = instance_for(pick["function"].get("parameters") or {"type": "object"}, fill)
    return {
        "name": pick["function"]["name"],
        "arguments": arguments if isinstance(arguments, dict) else {},
    }


Asked = tuple[str | Mapping[str, Any] | None, Sequence[Mapping[str, Any]], str]


def answer_as_asked(
    prompt: str,
    answer: str,
    label: str,
    options: GenParams,
    asked: Asked,
    correct: bool,
    rng: random.Random,
) -> dict[str, Any]:
    """The simulated model's answer as it honours the request (``asked``: format, tools,
    tool_choice): a tool call (when tools are offered and the conversation does not end with a
    tool's result; the best-matching tool when ``correct``), else the labelled ``answer``, as
    JSON when a format is asked, cut at ``options.stop`` and ``options.num_predict``. Returns
    the :class:`~node.slm.base.Generation` fields beyond model and timings."""
    format, tools, tool_choice = asked
    stop, num_predict = options.stop, options.num_predict
    prompt_tokens = count_tokens(prompt)
    if tools and (tool_choice != "auto" or not last_turn_is_tool_result(prompt)):
        text = f"{label} (simulated tool call)"
        call = tool_call(prompt, tools, tool_choice, correct, rng)
        return {
            "text": text,
            "tool_calls": (call,),
            "prompt_tokens": prompt_tokens,
            "eval_tokens": count_tokens(text),
        }
    text = apply_stop(json_answer(format, answer) if format is not None else answer, stop)
    text, cut, tokens = cut_tokens(text, num_predict, "" if format else label)
    return {
        "text": text,
        "done_reason": "length" if cut else "stop",
        "prompt_tokens": prompt_tokens,
        "eval_tokens": tokens,
    }
