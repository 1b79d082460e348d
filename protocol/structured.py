"""Does an answer conform to what the leader asked for? (format, schema, tools) -- pure checks.

The leader drops a response that fails :func:`answer_problem` (a ``Rejected`` effect, counted
like every peer fault); such an executor counts as missing in the result. Verifiers judge what
:func:`judged_answer` renders, so a tool call is scored as an answer to the conversation.

JSON schema: a deliberately small subset, checked here rather than with the ``jsonschema``
package. The leader runs it on text that any peer sent, against a schema that any client sent,
so it must be bounded: no ``pattern`` (Python's ``re`` has no timeout: a hostile regex on 16 KiB
of text would stall the leader), no remote ``$ref`` (no I/O in protocol/), a depth limit on
local ``$ref`` chains. Supported: ``type`` (one or a list), ``enum``, ``const``, ``properties``,
``required``, ``additionalProperties`` (bool or schema), ``items`` (a schema), ``minItems``,
``maxItems``, ``minLength``, ``maxLength``, ``minimum``, ``maximum``, ``exclusiveMinimum``,
``exclusiveMaximum``, ``anyOf``, ``oneOf``, ``allOf``, ``$ref`` to ``#/$defs/..`` or
``#/definitions/..`` (what pydantic and LangChain produce). Other keywords (``pattern``,
``format``, ``title``, ``description``, ``default``...) are not checked.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from protocol.generation import compact_json, tool_names
from protocol.messages import Advertise, Response

__all__ = ["answer_problem", "format_problem", "judged_answer", "judged_prompt", "schema_problem"]

_MAX_REF_DEPTH = 32
_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and math.isfinite(v) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}


def schema_problem(schema: Mapping[str, Any], instance: Any) -> str | None:
    """Why ``instance`` does not conform to ``schema`` (the subset above), or ``None``."""
    return _check(schema, instance, schema, "$", 0)


def _resolve(root: Mapping[str, Any], ref: str) -> Mapping[str, Any] | None:
    if ref == "#":
        return root
    for prefix in ("#/$defs/", "#/definitions/"):
        if ref.startswith(prefix):
            table = root.get(prefix[2:-1])
            target = table.get(ref[len(prefix) :]) if isinstance(table, Mapping) else None
            return target if isinstance(target, Mapping) else None
    return None


def _check(schema: Any, value: Any, root: Mapping[str, Any], at: str, depth: int) -> str | None:
    if schema is True or schema == {}:
        return None
    if schema is False:
        return f"{at}: no value allowed here"
    if not isinstance(schema, Mapping):
        return None  # not a schema we understand: nothing to check
    if depth > _MAX_REF_DEPTH:
        return f"{at}: schema nests too deep"
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = _resolve(root, ref)
        if target is None:
            return f"{at}: unresolvable $ref {ref[:60]!r}"
        problem = _check(target, value, root, at, depth + 1)
        if problem:
            return problem
    for check in (_type, _enum, _number, _string, _array, _object, _combinators):
        problem = check(schema, value, root, at, depth)
        if problem:
            return problem
    return None


def _type(schema: Mapping[str, Any], value: Any, root: Any, at: str, depth: int) -> str | None:
    wanted = schema.get("type")
    if wanted is None:
        return None
    names = wanted if isinstance(wanted, list) else [wanted]
    if any(_TYPES.get(name, lambda v: True)(value) for name in names if isinstance(name, str)):
        return None
    return f"{at}: expected {'/'.join(map(str, names))}, got {_kind(value)}"


def _kind(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _TYPES[name](value):
            return name
    return type(value).__name__


def _enum(schema: Mapping[str, Any], value: Any, root: Any, at: str, depth: int) -> str | None:
    if "const" in schema and not _same(value, schema["const"]):
        return f"{at}: must be {compact_json(schema['const'])[:60]}"
    options = schema.get("enum")
    if isinstance(options, list) and not any(_same(value, o) for o in options):
        return f"{at}: not one of the allowed values"
    return None


def _same(a: Any, b: Any) -> bool:
    # JSON equality: 1 == 1.0, but True is not 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _number(schema: Mapping[str, Any], value: Any, root: Any, at: str, depth: int) -> str | None:
    if not _TYPES["number"](value):
        return None
    for key, ok in (
        ("minimum", lambda v, bound: v >= bound),
        ("maximum", lambda v, bound: v <= bound),
        ("exclusiveMinimum", lambda v, bound: v > bound),
        ("exclusiveMaximum", lambda v, bound: v < bound),
    ):
        bound = schema.get(key)
        if _TYPES["number"](bound) and not ok(value, bound):
            return f"{at}: {value} breaks {key} {bound}"
    return None


def _string(schema: Mapping[str, Any], value: Any, root: Any, at: str, depth: int) -> str | None:
    if not isinstance(value, str):
        return None
    lo, hi = schema.get("minLength"), schema.get("maxLength")
    if isinstance(lo, int) and len(value) < lo:
        return f"{at}: shorter than {lo} characters"
    if isinstance(hi, int) and len(value) > hi:
        return f"{at}: longer than {hi} characters"
    return None


def _array(schema: Mapping[str, Any], value: Any, root: Any, at: str, depth: int) -> str | None:
    if not isinstance(value, list):
        return None
    lo, hi = schema.get("minItems"), schema.get("maxItems")
    if isinstance(lo, int) and len(value) < lo:
        return f"{at}: fewer than {lo} items"
    if isinstance(hi, int) and len(value) > hi:
        return f"{at}: more than {hi} items"
    items = schema.get("items")
    if isinstance(items, Mapping | bool):
        for i, item in enumerate(value):
            problem = _check(items, item, root, f"{at}[{i}]", depth + 1)
            if problem:
                return problem
    return None


def _object(schema: Mapping[str, Any], value: Any, root: Any, at: str, depth: int) -> str | None:
    if not isinstance(value, dict):
        return None
    required = schema.get("required")
    if isinstance(required, list):
        for key in required:
            if isinstance(key, str) and key not in value:
                return f"{at}: missing required property {key!r}"
    properties = schema.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            problem = _check(properties[key], item, root, f"{at}.{key}", depth + 1)
        elif extra is False:
            problem = f"{at}: unexpected property {key[:40]!r}"
        else:
            problem = _check(extra, item, root, f"{at}.{key}", depth + 1)
        if problem:
            return problem
    return None


def _combinators(
    schema: Mapping[str, Any], value: Any, root: Any, at: str, depth: int
) -> str | None:
    for key in ("allOf", "anyOf", "oneOf"):
        subs = schema.get(key)
        if not isinstance(subs, list) or not subs:
            continue
        problems = [_check(sub, value, root, at, depth + 1) for sub in subs]
        passed = sum(p is None for p in problems)
        if key == "allOf" and passed < len(subs):
            return next(p for p in problems if p)
        if key == "anyOf" and not passed:
            return f"{at}: matches none of anyOf ({problems[0]})"
        if key == "oneOf" and passed != 1:
            return f"{at}: matches {passed} of oneOf, needs exactly 1"
    return None


def format_problem(fmt: str | Mapping[str, Any] | None, text: str) -> str | None:
    """Why ``text`` is not what ``fmt`` asked for (``"json"``: any JSON; a map: that schema)."""
    if fmt is None:
        return None
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        return f"not valid JSON ({exc.__class__.__name__}: {str(exc)[:80]})"
    if isinstance(fmt, Mapping):
        problem = schema_problem(fmt, value)
        return f"does not match the schema: {problem}" if problem else None
    return None


def answer_problem(advertise: Advertise, response: Response) -> str | None:
    """Why ``response`` does not answer ``advertise`` in the form asked, or ``None`` if it does.

    A tool call must name an offered tool and carry arguments that fit its ``parameters``;
    ``tool_choice`` "required" (or a tool's name) demands a call; an answer without calls must
    match ``format`` when one was asked for.
    """
    calls = response.tool_calls
    choice = advertise.tool_choice
    if not calls:
        if choice != "auto":
            return f"a tool call was required ({choice})"
        return format_problem(advertise.format, response.text)
    offered = {t["function"]["name"]: t["function"] for t in advertise.tools}
    for call in calls:
        function = offered.get(call["name"])
        if function is None:
            return f"calls {call['name']!r}, which was not offered"
        if choice not in ("auto", "required") and call["name"] != choice:
            return f"calls {call['name']!r}, but {choice!r} was required"
        parameters = function.get("parameters")
        if isinstance(parameters, Mapping):
            problem = schema_problem(parameters, call["arguments"])
            if problem:
                return f"arguments of {call['name']!r} do not fit its parameters: {problem}"
    return None


def judged_answer(response: Response) -> str:
    """What a verifier grades: the text, then each tool call as one readable line."""
    lines = [response.text] if response.text.strip() else []
    for call in response.tool_calls:
        lines.append(
            f"[calls tool {call['name']} with arguments {compact_json(call['arguments'])}]"
        )
    return "\n".join(lines)


def judged_prompt(advertise: Advertise, prompt: str) -> str:
    """The question a verifier grades against: the conversation, plus the tools on offer."""
    if not advertise.tools:
        return prompt
    offered = []
    for tool in advertise.tools:
        function = tool["function"]
        params = compact_json(function.get("parameters") or {})
        offered.append(f"- {function['name']}: {function.get('description') or ''} {params}")
    names = ", ".join(tool_names(advertise.tools))
    return f"{prompt}\n\n(The assistant may call these tools: {names})\n" + "\n".join(offered)
