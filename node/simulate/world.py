"""The simulated world: peers with known answer quality and known judging behaviour.

Every answer has a *true quality* in [0, 0.99] that only the simulator knows; judges see the
answer and return a score according to their behaviour. The experiment measures how often the
session's winner is the answer of the highest true quality.

Behaviours of a judge (``Behaviour``):

* ``honest`` — true quality plus Gaussian noise (``noise``), rounded to 2 decimals like an LLM
  judge's output.
* ``lazy`` — the same score for everything (``LAZY_SCORE``), without reading.
* ``random`` — uniform in [0, 0.99].
* ``inverting`` — ``0.99 - quality`` (plus noise): rewards the worst answers.
* ``colluding`` — 0.99 for one answer, 0.00 for the rest. Colluders coordinate without
  knowing quality: they boost their own executor's answer when one is in the session (they
  recognise its text under any label), otherwise the answer a hash of the task id picks among
  the real labels (the same for all of them). They recognise a canary made from their own
  answer as not theirs, and sink it: canaries do not catch them, consensus must.

An adversarial peer judges honestly until the attack starts (``World.attacking``), so it can
first earn standing; as an executor it always answers badly (the attacker's answer).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from protocol.identity import peer_id_from_public_key
from protocol.messages import MAX_SCORE

__all__ = ["BEHAVIOURS", "LAZY_SCORE", "Behaviour", "SimPeer", "World", "make_peers"]

LAZY_SCORE = 0.7
CANARY_QUALITY = 0.05  # a canary is a wrong answer: an honest judge scores it near 0


class Behaviour(StrEnum):
    HONEST = "honest"
    LAZY = "lazy"
    RANDOM = "random"
    INVERTING = "inverting"
    COLLUDING = "colluding"


BEHAVIOURS = tuple(b.value for b in Behaviour if b != Behaviour.HONEST)


@dataclass(frozen=True, slots=True)
class SimPeer:
    """One simulated identity: its peer ID, model quality (mean answer quality), behaviour."""

    peer: bytes
    skill: float
    behaviour: Behaviour

    @property
    def adversarial(self) -> bool:
        return self.behaviour != Behaviour.HONEST


def make_peers(
    rng: random.Random, count: int, behaviour: Behaviour, skill: tuple[float, float]
) -> list[SimPeer]:
    """``count`` fresh identities (random Ed25519-shaped IDs) with skills drawn in ``skill``."""
    return [
        SimPeer(peer_id_from_public_key(rng.randbytes(32)), rng.uniform(*skill), behaviour)
        for _ in range(count)
    ]


def _clamp(value: float) -> float:
    return round(min(max(value, 0.0), MAX_SCORE), 2)


class World:
    """Answer qualities and judgements; all randomness from one seeded ``random.Random``."""

    def __init__(
        self, rng: random.Random, *, noise: float = 0.07, answer_spread: float = 0.1
    ) -> None:
        self.rng = rng
        self.noise = noise
        self.answer_spread = answer_spread
        self.attacking = False
        self.peers: dict[bytes, SimPeer] = {}
        self.quality: dict[tuple[str, bytes], float] = {}  # (task, executor) -> true quality

    def add(self, peers: Sequence[SimPeer]) -> None:
        for peer in peers:
            self.peers[peer.peer] = peer

    def answer(self, task: str, executor: bytes) -> tuple[str, float]:
        """The executor's answer text and its true quality for this task."""
        peer = self.peers[executor]
        if peer.adversarial:
            quality = _clamp(self.rng.uniform(0.05, 0.3))  # the attacker's answer
        else:
            quality = _clamp(self.rng.gauss(peer.skill, self.answer_spread))
        self.quality[(task, executor)] = quality
        return f"answer of {executor.hex()[-8:]} to {task} (true quality {quality:.2f})", quality

    def forget(self, task: str, executors: Sequence[bytes]) -> None:
        for ex in executors:
            self.quality.pop((task, ex), None)

    def judge(
        self,
        task: str,
        verifier: bytes,
        executor: bytes | None,
        label: str,
        by_label: Mapping[str, bytes],
        *,
        canary: bool = False,
    ) -> float:
        """The score ``verifier`` gives the item under ``label`` (``executor``'s answer, or a
        canary: a wrong answer, when ``canary``). ``by_label``: every real label's executor."""
        real = not canary and executor is not None
        quality = self.quality[(task, executor)] if real else CANARY_QUALITY
        behaviour = self.peers[verifier].behaviour
        if not self.attacking and behaviour != Behaviour.HONEST:
            behaviour = Behaviour.HONEST  # adversaries behave until the attack starts
        if behaviour == Behaviour.HONEST:
            return _clamp(self.rng.gauss(quality, self.noise))
        if behaviour == Behaviour.LAZY:
            return LAZY_SCORE
        if behaviour == Behaviour.RANDOM:
            return _clamp(self.rng.uniform(0.0, MAX_SCORE))
        if behaviour == Behaviour.INVERTING:
            return _clamp(self.rng.gauss(MAX_SCORE - quality, self.noise))
        target = self.collusion_target(task, by_label)
        return MAX_SCORE if label == target and not canary else 0.0

    def collusion_target(self, task: str, by_label: Mapping[str, bytes]) -> str | None:
        """The label colluders boost: their own executor's (they know its text, judging blind
        or not), else one the task id picks among the real labels (they cannot see quality)."""
        ours = sorted(label for label, ex in by_label.items() if self.peers[ex].adversarial)
        pool = ours or sorted(by_label)
        if not pool:
            return None
        digest = hashlib.sha256(task.encode()).digest()
        return pool[int.from_bytes(digest[:4], "big") % len(pool)]
