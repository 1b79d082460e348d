"""An in-process stand-in for the swarm: ``N`` simulated providers, the protocol's own role split
and tally, no network. Fast and deterministic, for checking the evaluation harness against the
simulation's predictions; the multi-process tests cover the real wiring."""

from __future__ import annotations

import hashlib
import random

from node.evaluate.ports import ExecutorAnswer, SwarmOutcome
from node.slm.sim import SimBackend
from protocol.tally import split_roles, tally


class InProcessSimSwarm:
    def __init__(self, providers: int, *, seed: int = 0, **sim: object) -> None:
        self.backends = {
            hashlib.sha256(f"p{i}".encode()).digest()[:8]: SimBackend(
                name=f"p{i}", seed=seed, **sim
            )
            for i in range(providers)
        }
        self.rng = random.Random(seed)
        self.sessions = 0

    async def ask(self, prompt: str, providers: int, timeout_s: float) -> SwarmOutcome:
        self.sessions += 1
        joined = list(self.backends)[:providers]
        executors, verifiers = split_roles(joined, self.rng)
        texts = {e: (await self.backends[e].generate(prompt)).text for e in executors}
        scores = {
            e: {v: (await self.backends[v].judge(prompt, texts[e])).score for v in verifiers}
            for e in executors
        }
        result = tally(executors, verifiers, scores)
        return SwarmOutcome(
            task=f"task-{self.sessions}",
            winner=result.winner.hex() if result.winner else None,
            text=texts[result.winner] if result.winner else "",
            answers=tuple(
                ExecutorAnswer(e.hex(), self.backends[e].model, texts[e]) for e in executors
            ),
            verifiers=len(verifiers),
            timings={"join": 1.0, "execute": 2.0, "verify": 3.0, "total": 6.0},
        )
