"""The double's data: what a model answers (:class:`ModelSpec`), scripted replies
(:class:`Reply`), recorded requests, and how a default answer is shaped as Ollama's sampler would."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from node.evaluate.check import check, checker_for
from node.evaluate.templates import solve

VERSION = "0.6.5"


@dataclass
class Reply:
    """One scripted reply. ``text`` is the content; with ``logprobs`` given and ``text`` empty, the
    content is the logprobs' tokens joined (so chunks and tokens line up)."""

    text: str = ""
    status: int = 200
    error: str = "internal error"
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    error_after: int | None = None
    drop_after: int | None = None
    logprobs: list[dict[str, Any]] | None = None
    tool_calls: list[dict[str, Any]] | None = None  # [{"name", "arguments"}]
    scripted: bool = True  # False: the model's default (then format/tools shape it)


@dataclass
class ModelSpec:
    """A model the double serves, and how it behaves when no scripted reply is queued."""

    name: str
    answer: str = "{model} answers: {prompt}"
    judge_score: float = 0.8
    judge_reason: str = "Accurate and concise."
    judge: str | None = None  # raw judge reply text; overrides judge_score/judge_reason
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    family: str = "qwen2"
    parameter_size: str = "1.5B"
    logprobs: bool = True  # False: ignore the request's logprobs, as servers before 0.12 do
    # `rnet eval` questions (node.evaluate.templates): answered right with this probability
    # (deterministic per model and prompt), else with a plausible slip; judged exactly.
    solves: float | None = None
    tools: bool = True  # False: a model whose template has no tools (400 on a tools request)


@dataclass
class RecordedRequest:
    method: str
    path: str
    body: Any


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _tokens(text: str) -> list[str]:
    # Word-ish pieces keep streaming realistic without a tokenizer; digits and punctuation split
    # one by one as Qwen's tokenizer does, so logprob alignment tests see per-digit tokens.
    return re.findall(r"[A-Za-z]+\s*|\d|\s+|[^\sA-Za-z\d]", text) or [""]


def _eval_reply(spec: ModelSpec, kind: str, prompt: str) -> str | None:
    """A plausible model on generated evaluation questions (None: not one of those)."""
    solved = solve(prompt)
    if solved is None:
        return None
    if kind == "judge":
        answer = prompt.split("ANSWER:\n<<<\n", 1)[-1].split("\n>>>", 1)[0]
        right = check(checker_for(solved.kind, solved.answer), solved.answer, answer).correct
        reason = "The final answer is right." if right else "The final answer is wrong."
        return json.dumps({"reason": reason, "score": 0.9 if right else 0.1})
    digest = hashlib.sha256(f"{spec.name}\x00{prompt}".encode()).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64
    value = solved.answer if draw < spec.solves else solved.wrong[digest[8] % len(solved.wrong)]
    return f"Let me work through it step by step.\nAnswer: {value}"


def _shape(
    reply: Reply, body: dict[str, Any], prompt: str, tools: list[Any], calls: Any
) -> tuple[Reply, list[dict[str, Any]] | None]:
    """Apply format, tools and stop to an answer as Ollama's sampler would (defaults only:
    a scripted text is kept, so tests can send what a misbehaving model sends)."""
    from node.slm.shaping import apply_stop, json_answer, tool_call

    text = reply.text
    if tools and calls is None and not reply.scripted:
        calls = [tool_call(prompt, tools, "auto", True, random.Random(0))]
        text = ""
    elif body.get("format") and not reply.scripted:
        text = json_answer(body["format"], text)
    stop = (body.get("options") or {}).get("stop")
    if stop:
        text = apply_stop(text, stop)
    return dataclasses.replace(reply, text=text), calls


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@dataclass
class _State:
    models: dict[str, ModelSpec] = field(default_factory=dict)
    pullable: set[str] = field(default_factory=set)
    scripts: dict[tuple[str, str], deque[Reply]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    loaded: set[str] = field(default_factory=set)
