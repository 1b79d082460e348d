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
from node.gateway.swarm import SwarmResult

_PIECE = re.compile(r"\s*\S+\s*|\s+")


def split_text(text: str) -> list[str]:
    """Cut the answer into word-sized pieces whose concatenation is exactly ``text``."""
    return _PIECE.findall(text)


@dataclass(slots=True)
class Timing:
    """When the request started and when its session had participants (monotonic ns)."""

    started_ns: int
    assigned_ns: int | None = None

    def durations(self) -> dict[str, int]:
        """Ollama's duration fields: joining counts as loading, the rest as evaluation."""
        now = time.monotonic_ns()
        total = now - self.started_ns
        load = (self.assigned_ns or self.started_ns) - self.started_ns
        return {"total_duration": total, "load_duration": load, "eval_duration": total - load}


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _word_count(text: str) -> int:
    # The swarm does not report tokens; a word count is the honest approximation.
    return len(text.split())


class Dialect:
    """How one endpoint renders chunks, the final record, keep-alives and in-stream errors."""

    content_type = "application/x-ndjson"
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
        return {
            "done": True,
            "done_reason": "stop",
            **timing.durations(),
            "prompt_eval_count": _word_count(self.prompt),
            "prompt_eval_duration": 0,
            "eval_count": _word_count(result.text),
            "swarm": result.metadata(),
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
        return {**self.chunk(result.text), **self._ollama_stats(result, timing)}


class OpenAIChat(Dialect):
    content_type = "text/event-stream"
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

    def final(self, result: SwarmResult, timing: Timing) -> dict[str, Any]:
        return {**self._delta({}, "stop"), "swarm": result.metadata()}

    def closing_records(self, result: SwarmResult) -> list[dict[str, Any]]:
        if not self.include_usage:
            return []
        return [
            {**self._envelope("chat.completion.chunk"), "choices": [], "usage": self._usage(result)}
        ]

    def closing(self) -> bytes:
        return b"data: [DONE]\n\n"

    def whole(self, result: SwarmResult, timing: Timing) -> dict[str, Any]:
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


class OpenAICompletion(OpenAIChat):
    """Legacy ``/v1/completions``: the same stream, with ``text`` instead of message deltas."""

    def __init__(self, model: str, prompt: str, include_usage: bool = False) -> None:
        super().__init__(model, prompt, include_usage)
        self.id = f"cmpl-{uuid.uuid4().hex}"

    def _text(self, text: str, finish: str | None) -> dict[str, Any]:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        return {**self._envelope("text_completion"), "choices": [choice]}

    def opening(self) -> bytes:
        return b""  # completions have no role chunk

    def chunk(self, piece: str) -> dict[str, Any]:
        return self._text(piece, None)

    def final(self, result: SwarmResult, timing: Timing) -> dict[str, Any]:
        return {**self._text("", "stop"), "swarm": result.metadata()}

    def closing_records(self, result: SwarmResult) -> list[dict[str, Any]]:
        if not self.include_usage:
            return []
        return [{**self._envelope("text_completion"), "choices": [], "usage": self._usage(result)}]

    def whole(self, result: SwarmResult, timing: Timing) -> dict[str, Any]:
        return {
            **self._text(result.text, "stop"),
            "usage": self._usage(result),
            "system_fingerprint": f"rnet-{RNET_VERSION}",
            "swarm": result.metadata(),
        }
