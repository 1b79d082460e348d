"""In-memory wiring of session machines (h11's tests/helpers.py, for a swarm).

``Swarm`` runs one :class:`LeaderSession` and a :class:`ParticipantSession` per provider that
sees the advertisement. Every ``Publish`` effect is really sealed and re-opened (signatures,
canonical bytes), then queued; tests decide the delivery order, when local work completes and
when time passes. Nothing is asynchronous: the test is the scheduler.

Delivery follows the topics: a message published on a topic reaches the nodes subscribed to it
at that moment (every node hears ``swarm/mesh``), so the leader topic reaches the leader only
and the judge topic the joiners that did not leave it. ``stored[node]`` is what a node's store
would hold: every envelope it sent, and every one it received that its machine accepted.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from protocol.envelope import Envelope, open_envelope, seal
from protocol.identity import NaclSigner
from protocol.messages import MESH_TOPIC, Advertise, Body
from protocol.session import (
    Effect,
    Finished,
    Generate,
    Judge,
    LeaderSession,
    ParticipantSession,
    Publish,
    Rejected,
    Subscribe,
    Unsubscribe,
)
from tests.protocol.strategies import SIGNERS

TASK = "task-1"


@dataclass
class Delivery:
    """One published envelope and who has not received it yet."""

    env: Envelope
    pending: list[bytes]
    topic: str = ""


@dataclass
class Work:
    node: bytes
    effect: Generate | Judge


@dataclass
class Swarm:
    providers: int = 3
    advertise: Advertise = field(default_factory=lambda: Advertise(prompt="What is 2+2?"))
    seed: int = 0
    auto_assign_at: int | None = None
    auto_finalize: bool = True
    split: str = "balanced"
    participant_kw: dict = field(default_factory=dict)
    leader_kw: dict = field(default_factory=dict)
    canary_rate: float = 0.0
    score_of: Callable[[bytes, bytes], float] = lambda ex, ver: (ex[-1] % 90) / 100
    canary_score: Callable[[bytes], float] = lambda ver: 0.05
    answer_of: Callable[[bytes], str] = lambda node: f"answer of {node[-3:].hex()}"

    def __post_init__(self) -> None:
        self.now = 0
        self.clock_history: list[int] = [0]
        self.signers: dict[bytes, NaclSigner] = {
            s.peer_id: s for s in SIGNERS[: self.providers + 1]
        }
        self.leader_id = SIGNERS[0].peer_id
        self.provider_ids = [s.peer_id for s in SIGNERS[1 : self.providers + 1]]
        self.seq = dict.fromkeys(self.signers, 1)
        self.leader = LeaderSession(
            TASK,
            self.leader_id,
            self.advertise,
            rng=random.Random(self.seed),
            auto_assign_at=self.auto_assign_at,
            auto_finalize=self.auto_finalize,
            split=self.split,
            canary_rate=self.canary_rate,
            **self.leader_kw,
        )
        self.participants: dict[bytes, ParticipantSession] = {}
        self.topics: dict[bytes, set[str]] = {p: {MESH_TOPIC} for p in self.signers}
        self.stored: dict[bytes, list[bytes]] = {p: [] for p in self.signers}
        self.queue: list[Delivery] = []
        self.work: list[Work] = []
        self.effects: dict[bytes, list[Effect]] = {p: [] for p in self.signers}
        self.finished_at: dict[bytes, int] = {}
        self.run(self.leader_id, self.leader.start(self.now))

    # -- plumbing -------------------------------------------------------------------------------
    def session(self, node: bytes) -> LeaderSession | ParticipantSession | None:
        return self.leader if node == self.leader_id else self.participants.get(node)

    def seal_as(self, node: bytes | NaclSigner, body: Body, task: str = TASK) -> Envelope:
        signer = node if isinstance(node, NaclSigner) else self.signers[node]
        node = signer.peer_id
        self.seq[node] = self.seq.get(node, 1) + 1
        raw = seal(body, task=task, signer=signer, seq=self.seq[node], ts_ms=self.now).raw
        return open_envelope(raw, expected_sender=node)

    def run(self, node: bytes, effects: list[Effect]) -> None:
        self.effects[node].extend(effects)
        for effect in effects:
            if isinstance(effect, Publish):
                env = self.seal_as(node, effect.body, effect.task)
                self.stored[node].append(env.raw)
                self.broadcast(env, effect.topic)
            elif isinstance(effect, Subscribe):
                self.topics[node].add(effect.topic)
            elif isinstance(effect, Unsubscribe):
                self.topics[node].discard(effect.topic)
            elif isinstance(effect, Generate | Judge):
                self.work.append(Work(node, effect))
            elif isinstance(effect, Finished) or getattr(effect, "stage", None) == "aborted":
                self.finished_at.setdefault(node, self.now)

    def broadcast(self, env: Envelope, topic: str | None = None) -> None:
        topic = env.topic if topic is None else topic
        others = [p for p in self.signers if p != env.sender and topic in self.topics[p]]
        if others:
            self.queue.append(Delivery(env, others, topic))

    def inject(self, node: bytes | NaclSigner, body: Body, task: str = TASK) -> Envelope:
        """An arbitrary (possibly rule-breaking) signed message from ``node``, on its topic."""
        env = self.seal_as(node, body, task)
        self.broadcast(env)
        return env

    def deliver(self, env: Envelope, node: bytes) -> None:
        if node not in self.participants and node != self.leader_id:
            if env.kind != "advertise":
                return  # not subscribed to the task topic yet
            session = ParticipantSession.from_advertise(
                env, node, model="sim", backend="sim", **self.participant_kw
            )
            self.participants[node] = session
            self.stored[node].append(env.raw)
            self.run(node, session.start(self.now))
            return
        session = self.session(node)
        assert session is not None
        live = not session.finished
        effects = session.receive(env, self.now)
        if live and not any(isinstance(e, Rejected) and e.sender == env.sender for e in effects):
            self.stored[node].append(env.raw)
        self.run(node, effects)

    # -- scheduling -----------------------------------------------------------------------------
    def step_delivery(self, index: int = 0, target: int = 0) -> None:
        item = self.queue[index % len(self.queue)]
        node = item.pending.pop(target % len(item.pending))
        if not item.pending:
            self.queue.remove(item)
        self.deliver(item.env, node)

    def step_work(self, index: int = 0, fail: bool = False) -> None:
        item = self.work.pop(index % len(self.work))
        session = self.participants[item.node]
        effect = item.effect
        if isinstance(effect, Generate):
            if fail:
                out = session.generation_failed("boom", self.now)
            else:
                out = session.generation_done(self.answer_of(item.node), "sim", 5, self.now)
        elif fail:
            out = session.judgement_failed(effect.label, "judge down", self.now)
        else:
            score = self.judge(effect.label, item.node)
            out = session.judgement_done(effect.label, score, "ok", "sim-judge", self.now)
        self.run(item.node, out)

    def judge(self, label: str, verifier: bytes) -> float:
        """The test knows what the verifier cannot: whose answer (or which canary) a label is."""
        owner = {lab: ex for ex, lab in self.leader.labels.items()}.get(label)
        return self.canary_score(verifier) if owner is None else self.score_of(owner, verifier)

    def advance(self, ms: int) -> None:
        self.now += ms
        self.clock_history.append(self.now)
        for node in self.signers:
            session = self.session(node)
            if session is not None:
                self.run(node, session.tick(self.now))

    def settle(self) -> None:
        """Deliver everything and finish all work, in FIFO order, without moving the clock."""
        while self.queue or self.work:
            if self.queue:
                self.step_delivery()
            else:
                self.step_work()

    def rejected(self, node: bytes) -> list[Rejected]:
        return [e for e in self.effects[node] if isinstance(e, Rejected)]

    def run_to_end(self) -> None:
        """Settle, then let time pass deadline by deadline until every machine finished."""
        self.settle()
        for _ in range(20):
            deadlines = [
                d
                for p in self.signers
                if (s := self.session(p)) is not None and (d := s.next_deadline()) is not None
            ]
            if not deadlines:
                return
            self.advance(max(0, min(deadlines) - self.now))
            self.settle()
        raise AssertionError("machines did not finish")
