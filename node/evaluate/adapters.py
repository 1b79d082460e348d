"""The evaluation's interfaces (:mod:`node.evaluate.ports`) over a running node: the session
engine (``run_pipe``, as ``rnet pipe`` uses it) for the swarm, a backend for the single model.

Each executor's own answer is in the leader's session snapshots (the ``session`` events it
emits); the adapter keeps the last snapshot of each session it leads and reads the answers from
it once the session ended.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from node import events as ev
from node.evaluate.ports import ExecutorAnswer, SingleAnswer, SwarmOutcome
from node.sessions import FailureCode, SessionFailed, new_task_id
from node.slm.base import Backend, SLMError

# SessionFailed codes that mean the swarm itself is not there: stop instead of failing every
# remaining question the same way.
FATAL_CODES = (FailureCode.NOT_ENOUGH_PROVIDERS, FailureCode.UNAVAILABLE)


class EngineSwarm:
    """:class:`~node.evaluate.ports.Swarm` over a node's session engine."""

    def __init__(self, runtime: Any, engine: Any) -> None:
        self.runtime = runtime
        self.engine = engine
        self._watch: dict[str, ev.Session] = {}
        self._pending: set[str] = set()
        runtime.subscribe(self._on_event)

    def _on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.Session) and event.task in self._pending:
            self._watch[event.task] = event

    async def ask(self, prompt: str, providers: int, timeout_s: float) -> SwarmOutcome:
        task = new_task_id()
        self._pending.add(task)
        started = time.monotonic()
        result: ev.Result | None = None
        error, fatal = None, False
        try:
            result = await self.engine.run_pipe(prompt, providers, timeout_s=timeout_s, task=task)
        except SessionFailed as exc:
            error, fatal = exc.reason, exc.code in FATAL_CODES
        finally:
            self._pending.discard(task)
            snap = self._watch.pop(task, None)
        models = self.engine.provider_models()
        answers = ()
        if snap is not None:
            answers = tuple(
                ExecutorAnswer(peer, models.get(peer, "?"), snap.responses.get(peer))
                for peer in snap.executors
            )
        timings = dict(result.timings) if result is not None else {}
        timings.setdefault("total", (time.monotonic() - started) * 1000)
        return SwarmOutcome(
            task=task,
            winner=result.winner if result is not None else None,
            text=result.text if result is not None else "",
            answers=answers,
            verifiers=len(snap.verifiers) if snap is not None else 0,
            timings=timings,
            error=error,
            fatal=fatal,
        )


async def wait_for_providers(runtime: Any, wanted: int, timeout_s: float) -> int:
    """Wait (re-checking on every event, up to ``timeout_s``) until this node knows ``wanted``
    providers with a model; the number known at the end. The first sessions would otherwise
    spend their join window on a swarm this node has not heard of yet."""

    def known() -> int:
        return sum(1 for p in runtime.provider_peers() if p.model)

    changed = asyncio.Event()
    unsubscribe = runtime.subscribe(lambda _event: changed.set())
    deadline = time.monotonic() + timeout_s
    try:
        while known() < wanted:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), timeout=left)
            except TimeoutError:
                break
    finally:
        unsubscribe()
    return known()


class BackendSingle:
    """:class:`~node.evaluate.ports.SingleModel` over a backend (this node's own model)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.name = backend.model

    async def ask(self, prompt: str) -> SingleAnswer:
        started = time.monotonic()
        try:
            gen = await self.backend.generate(prompt)
        except SLMError as exc:
            ms = (time.monotonic() - started) * 1000
            return SingleAnswer(None, self.backend.model, ms, error=str(exc))
        ms = (time.monotonic() - started) * 1000
        count = gen.timings.get("eval_count")
        return SingleAnswer(gen.text, gen.model, ms, int(count) if count is not None else None)
