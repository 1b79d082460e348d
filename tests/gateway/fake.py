"""An in-process stand-in for the sessions engine, implementing the gateway's SwarmSessions.

It answers from the prompt (so a reply proves which request it belongs to), reports stages the way
the engine does, and can be told to fail, to hold until released, or to hang; it records every call
and every cancellation so tests can assert the gateway drove it correctly.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from node.gateway import StageCallback, SwarmResult, SwarmUnavailable
from node.gateway.swarm import Generation
from node.slm.shaping import apply_stop, cut_tokens, json_answer, tool_call

WINNER = "12D3KooWFakeWinnerPeer1111111111111111111111111111"
LOSER = "12D3KooWFakeLoserPeer22222222222222222222222222222"
VERIFIER = "12D3KooWFakeVerifierPeer333333333333333333333333"


def answer_for(prompt: str) -> str:
    """The fake swarm's deterministic answer: several words, a newline, the prompt echoed."""
    return f"The swarm says:\n  {prompt} -> answered."


@dataclass
class Call:
    prompt: str
    providers: int
    timeout_s: float
    aggregator: str
    task: str
    generation: Generation | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)


class FakeSwarm:
    """Configurable fake: set ``fail``, ``fail_after_assign``, ``hold`` or ``hang`` per test."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.models: dict[str, str] = {LOSER: "qwen2.5:1.5b", WINNER: "llama3.2:1b"}
        self.fail: SwarmUnavailable | None = None  # raised before participants are assigned
        self.fail_after_assign: SwarmUnavailable | None = None  # raised after "execute"
        self.hold: asyncio.Event | None = None  # wait for this after "execute" before answering
        self.hang = False  # never answer (the gateway's own deadline must end the request)
        self.text: str | None = None  # fixed answer instead of answer_for(prompt)
        # What the providers "announce"; None: the fake cannot tell (no up-front refusals).
        self.caps: set[str] | None = {"completion", "json", "tools"}
        self.answer: dict | None = None  # winner's response fields, instead of shaping them
        self._ids = itertools.count(1)
        self.call_started = asyncio.Event()
        self._calls_changed = asyncio.Condition()
        # (running, waiting, capacity) each time the gateway's queue moves, as the node adapter
        # is told (for the console); wait_queue wakes on each report
        self.reports: list[tuple[int, int, int]] = []
        self._queue_moved = asyncio.Event()

    async def wait_calls(self, n: int, timeout: float = 10.0) -> None:
        """Wait until exactly ``n`` calls were made (woken by each new call, bounded)."""
        async with self._calls_changed:
            await asyncio.wait_for(
                self._calls_changed.wait_for(lambda: len(self.calls) == n), timeout
            )

    def queue_changed(self, running: int, waiting: int, capacity: int) -> None:
        self.reports.append((running, waiting, capacity))
        self._queue_moved.set()

    async def wait_queue(
        self, check: Callable[[tuple[int, int, int]], bool], timeout: float = 10.0
    ) -> None:
        """Wait until the queue's last report (running, waiting, capacity) passes ``check``,
        woken by each report, bounded."""
        async with asyncio.timeout(timeout):
            while not (self.reports and check(self.reports[-1])):
                self._queue_moved.clear()  # (one loop: no report can slip in between)
                await self._queue_moved.wait()

    def provider_models(self) -> Mapping[str, str]:
        return dict(self.models)

    def capabilities(self) -> set[str]:
        if self.caps is None:
            raise AttributeError("capabilities unknown")
        return set(self.caps)

    async def run(
        self,
        prompt: str,
        *,
        providers: int,
        timeout_s: float,
        aggregator: str,
        on_stage: StageCallback | None = None,
        generation: Generation | None = None,
    ) -> SwarmResult:
        call = Call(prompt, providers, timeout_s, aggregator, f"task-{next(self._ids)}", generation)
        self.calls.append(call)
        async with self._calls_changed:
            self._calls_changed.notify_all()
        stage = on_stage or (lambda _stage: None)
        call.started.set()
        self.call_started.set()
        try:
            stage("advertise")
            if self.fail is not None:
                raise self.fail
            stage("execute")
            if self.hang:
                await asyncio.Event().wait()
            if self.hold is not None:
                await self.hold.wait()
            if self.fail_after_assign is not None:
                raise self.fail_after_assign
            stage("verify")
            stage("finalize")
            text = self.text if self.text is not None else answer_for(prompt)
            answer = self.answer if self.answer is not None else _shape(text, prompt, generation)
            return SwarmResult(
                task=call.task,
                winner=WINNER,
                score=0.87,
                text=answer.pop("text", text) if self.answer is None else text,
                averages={WINNER: 0.87, LOSER: 0.41},
                scores={WINNER: {VERIFIER: 0.87}, LOSER: {VERIFIER: 0.41}},
                missing={},
                timings={"join": 12.0, "execute": 30.0, "verify": 20.0},
                models={WINNER: "llama3.2:1b", LOSER: "qwen2.5:1.5b"},
                aggregator=aggregator,
                **answer,
            )
        except asyncio.CancelledError:
            call.cancelled.set()
            raise
        finally:
            call.finished.set()


def _shape(text: str, prompt: str, generation: Generation | None) -> dict:
    """The winner's answer as an honest executor would give it for ``generation``: a tool call
    when tools are offered, JSON when a format is asked, cut at stop and num_predict."""
    if generation is None:
        return {"text": text}
    if generation.tools:
        call = tool_call(prompt, generation.tools, generation.tool_choice, True, None)  # type: ignore[arg-type]
        return {"text": "", "tool_calls": (call,), "prompt_tokens": 9, "eval_tokens": 4}
    if generation.format is not None:
        text = json_answer(generation.format, text)
    text = apply_stop(text, generation.options.stop)
    text, cut, tokens = cut_tokens(text, generation.options.num_predict)
    return {
        "text": text,
        "done_reason": "length" if cut else "stop",
        "prompt_tokens": len(prompt.split()),
        "eval_tokens": tokens,
    }
