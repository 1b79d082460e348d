"""Reply shapes ("dialects"): Ollama generate, Ollama chat, OpenAI chat completions.

Each dialect renders the same session outcome as whole replies, stream chunks, the final record
(with the session's metadata under ``swarm``), keep-alives and in-stream errors.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from node.gateway.config import RNET_VERSION
from node.gateway.errors import error_body
from node.gateway.params import arguments_json
from node.gateway.swarm import Generation, SwarmResult

_PIECE = re.compile(r"\s*\S+\s*|\s+")


def split_text(text: str) -> list[str]:
    """Cut the answer into word-sized pieces whose concatenation is exactly ``text``."""
    return _PIECE.findall(text)


@dataclass(slots=True)
class Timing:
    """When the request started and when its session had participants (monotonic ns)."""

    started_ns: int
    assigned_ns: int | None = None

    def durations(self, result: SwarmResult | None = None) -> dict[str, int]:
        """Ollama's duration fields: joining counts as loading; prompt and eval durations are
        the winner's model times when its backend reported them, else the rest is eval."""
        now = time.monotonic_ns()
        total = now - self.started_ns
        load = (self.assigned_ns or self.started_ns) - self.started_ns
        prompt = result.prompt_ms * 1_000_000 if result else 0
        evaluated = result.eval_ms * 1_000_000 if result and result.eval_ms else total - load
        return {
            "total_duration": total,
            "load_duration": load,
            "prompt_eval_duration": prompt,
            "eval_duration": evaluated,
        }


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _word_count(text: str) -> int:
    # When the winner's backend reported no tokens, a word count is the honest approximation.
    return len(text.split())


def token_counts(prompt: str, result: SwarmResult) -> tuple[int, int, bool]:
    """(prompt tokens, answer tokens, estimated?): the winner's backend figures, else words."""
    if result.eval_tokens > 0:
        return result.prompt_tokens, result.eval_tokens, False
    return _word_count(prompt), _word_count(result.text), True


class Dialect:
    """How one endpoint renders chunks, the final record, keep-alives and in-stream errors."""

    content_type = "application/x-ndjson"
    openai = False

    def __init__(
        self,
        model: str,
        prompt: str,
        generation: Generation | None = None,
        ignored: list[str] | None = None,
    ) -> None:
        self.model = model
        self.prompt = prompt
        self.generation = generation or Generation()
        self.ignored = list(ignored or [])

    def metadata(self, result: SwarmResult) -> dict[str, Any]:
        """The ``swarm`` extra field: the session's metadata, how tokens were counted, and the
        request fields that were accepted but not applied."""
        estimated = token_counts(self.prompt, result)[2]
        return {
            **result.metadata(),
            "tokens": "estimated" if estimated else "reported",
            "ignored": self.ignored,
        }

    def tool_records(self, result: SwarmResult) -> list[dict[str, Any]]:
        """Stream records carrying the winner's tool calls (between the text and the final)."""
        return []

    def line(self, record: Mapping[str, Any]) -> bytes:
        return json.dumps(record, ensure_ascii=False).encode() + b"\n"

    def opening(self) -> bytes:
        return b""

    def keepalive(self) -> bytes:
        return self.line(self.chunk(""))

    def chunk(self, piece: str) -> dict[str, Any]:
        raise NotImplementedError

    def final(self, result: SwarmResult, timing: Timing) -> dict[str, Any]:
        raise NotImplementedError

    def whole(self, result: SwarmResult, timing: Timing) -> dict[str, Any]:
        raise NotImplementedError

    def stream_error(self, status: int, message: str, code: str | None) -> bytes:
        return self.line(error_body(self.openai, status, message, code))

    def closing_records(self, result: SwarmResult) -> list[dict[str, Any]]:
        """Records after the final one (OpenAI's usage chunk)."""
        return []

    def closing(self) -> bytes:
        return b""

    def _ollama_stats(self, result: SwarmResult, timing: Timing) -> dict[str, Any]:
        prompt_tokens, eval_tokens, _ = token_counts(self.prompt, result)
        return {
            "done": True,
            "done_reason": result.done_reason,
            **timing.durations(result),
            "prompt_eval_count": prompt_tokens,
            "eval_count": eval_tokens,
            "swarm": self.metadata(result),
        }


class OllamaGenerate(Dialect):
    def chunk(self, piece: str) -> dict[str, Any]:
        return {"model": self.model, "created_at": now_iso(), "response": piece, "done": False}

    def final(self, result: SwarmResult, timing: Timing) -> dict[str, Any]:
        return {**self.chunk(""), **self._ollama_stats(result, timing)}

    def whole(self, result: SwarmResult, timing: Timing) -> dict[str, Any]:
        return {**self.chunk(result.text), **self._ollama_stats(result, timing)}


class OllamaChat(Dialect):
    def chunk(self, piece: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "created_at": now_iso(),
            "message": {"role": "assistant", "content": piece},
            "done": False,
        }

    def final(self, result: SwarmResult, timing: Timing) -> dict[str, Any]:
        # Ollama's last chat chunk carries a message too (empty content).
        return {**self.chunk(""), **self._ollama_stats(result, timing)}

    def whole(self, result: SwarmResult, timing: Timing) -> dict[str, Any]:
        record = {**self.chunk(result.text), **self._ollama_stats(result, timing)}
        if result.tool_calls:
            record["message"]["tool_calls"] = _ollama_calls(result)
        return record

    def tool_records(self, result: SwarmResult) -> list[dict[str, Any]]:
        if not result.tool_calls:
            return []
        record = self.chunk("")
        record["message"]["tool_calls"] = _ollama_calls(result)
        return [record]


def _ollama_calls(result: SwarmResult) -> list[dict[str, Any]]:
    return [
        {"function": {"name": c["name"], "arguments": dict(c["arguments"])}}
        for c in result.tool_calls
    ]


def _openai_calls(result: SwarmResult, index: bool = False) -> list[dict[str, Any]]:
    calls = []
    for i, call in enumerate(result.tool_calls):
        function = {"name": call["name"], "arguments": arguments_json(call["arguments"])}
        entry = {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function", "function": function}
        calls.append({"index": i, **entry} if index else entry)
    return calls


def _finish_reason(result: SwarmResult) -> str:
    if result.tool_calls:
        return "tool_calls"
    return "length" if result.done_reason == "length" else "stop"


class OpenAIChat(Dialect):
    content_type = "text/event-stream"
    openai = True
    id_prefix = "chatcmpl"  # of the response ``id``

    def __init__(
        self,
        model: str,
        prompt: str,
        generation: Generation | None = None,
        ignored: list[str] | None = None,
        include_usage: bool = False,
    ) -> None:
        super().__init__(model, prompt, generation, ignored)
        self.id = f"{self.id_prefix}-{uuid.uuid4().hex}"
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
        prompt, completion, _ = token_counts(self.prompt, result)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def final(self, result: SwarmResult, timing: Timing) -> dict[str, Any]:
        return {**self._delta({}, _finish_reason(result)), "swarm": self.metadata(result)}

    def tool_records(self, result: SwarmResult) -> list[dict[str, Any]]:
        if not result.tool_calls:
            return []
        return [self._delta({"tool_calls": _openai_calls(result, index=True)}, None)]

    def closing_records(self, result: SwarmResult) -> list[dict[str, Any]]:
        if not self.include_usage:
            return []
        return [
            {**self._envelope("chat.completion.chunk"), "choices": [], "usage": self._usage(result)}
        ]

    def closing(self) -> bytes:
        return b"data: [DONE]\n\n"

    def whole(self, result: SwarmResult, timing: Timing) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": result.text, "refusal": None}
        if result.tool_calls:
            message["tool_calls"] = _openai_calls(result)
            message["content"] = result.text or None
        choice = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": _finish_reason(result),
        }
        return {
            **self._envelope("chat.completion"),
            "choices": [choice],
            "usage": self._usage(result),
            "system_fingerprint": f"rnet-{RNET_VERSION}",
            "swarm": self.metadata(result),
        }


class OpenAICompletion(OpenAIChat):
    """Legacy ``/v1/completions``: the same stream, with ``text`` instead of message deltas."""

    id_prefix = "cmpl"

    def _text(self, text: str, finish: str | None) -> dict[str, Any]:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        return {**self._envelope("text_completion"), "choices": [choice]}

    def opening(self) -> bytes:
        return b""  # completions have no role chunk

    def chunk(self, piece: str) -> dict[str, Any]:
        return self._text(piece, None)

    def final(self, result: SwarmResult, timing: Timing) -> dict[str, Any]:
        return {**self._text("", _finish_reason(result)), "swarm": self.metadata(result)}

    def tool_records(self, result: SwarmResult) -> list[dict[str, Any]]:
        return []

    def closing_records(self, result: SwarmResult) -> list[dict[str, Any]]:
        if not self.include_usage:
            return []
        return [{**self._envelope("text_completion"), "choices": [], "usage": self._usage(result)}]

    def whole(self, result: SwarmResult, timing: Timing) -> dict[str, Any]:
        return {
            **self._text(result.text, _finish_reason(result)),
            "usage": self._usage(result),
            "system_fingerprint": f"rnet-{RNET_VERSION}",
            "swarm": self.metadata(result),
        }
