"""What the evaluation needs from the outside, as two narrow interfaces.

:class:`Swarm` runs one session for a prompt with ``N`` participants and hands back the winner
*and* each executor's own answer; :class:`SingleModel` asks one model directly. The CLI plugs in
the node's session engine and backend (:mod:`node.evaluate.adapters`); tests plug in anything
that answers (an in-process simulated swarm, say).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ExecutorAnswer:
    peer: str
    model: str
    text: str | None  # None: the executor did not answer in time


@dataclass(frozen=True, slots=True)
class SwarmOutcome:
    """One session: the winner's text ('' without a winner), every executor's answer, how many
    verifiers judged, stage timings (ms: join, execute, verify, total) and, if it failed, why."""

    task: str
    winner: str | None
    text: str
    answers: tuple[ExecutorAnswer, ...] = ()
    verifiers: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    # The swarm is not there (too few providers): further questions would fail the same way.
    fatal: bool = False


@dataclass(frozen=True, slots=True)
class SingleAnswer:
    text: str | None
    model: str
    ms: float
    tokens: int | None = None  # the model's own count of generated tokens, when it reports one
    error: str | None = None


class Swarm(Protocol):
    async def ask(self, prompt: str, providers: int, timeout_s: float) -> SwarmOutcome:
        """Lead one session with ``providers`` participants; never raises for a failed session
        (the outcome says why), never runs past ``timeout_s``."""
        ...


class SingleModel(Protocol):
    name: str

    async def ask(self, prompt: str) -> SingleAnswer:
        """Ask the model directly; a failure is an answer with ``error`` set."""
        ...
