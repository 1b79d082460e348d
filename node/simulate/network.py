"""A simulated network and clock that drive the real session machines of one session.

The leader and every joiner run :class:`protocol.session.LeaderSession` /
:class:`protocol.session.ParticipantSession` exactly as a node does; this module plays the
runtime's part: it carries out their effects (publish to subscribers after a random latency,
subscribe, generate, judge) on an event queue with a simulated millisecond clock. No sockets,
no trio, no libp2p: thousands of sessions run in one process in seconds.

Envelopes are not signed here (``sig`` is empty, ``raw`` a placeholder): the machines take
envelopes that already passed :func:`protocol.envelope.open_envelope`, and every attack the
experiment studies is in what peers *say* (their scores), which signatures do not prevent.
Judging is blind as on a real swarm (labelled items, canaries); only the simulator reads the
leader's label map, to know each item's true quality.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from node.simulate.world import World
from protocol.effects import (
    Finished,
    Generate,
    Judge,
    Publish,
    Rejected,
    Subscribe,
    Unsubscribe,
)
from protocol.envelope import PROTOCOL_VERSION, Envelope
from protocol.messages import MESH_TOPIC, Advertise, Body, Result
from protocol.session import LeaderSession, ParticipantSession

__all__ = ["SessionRun", "SimNetwork"]

logger = logging.getLogger(__name__)

_GEN_MS = (800, 4_000)  # how long a simulated model takes to answer
_JUDGE_MS = (200, 1_500)  # ... and to judge one answer


@dataclass(slots=True)
class SessionRun:
    """What one simulated session produced (``result`` is the leader's signed body)."""

    task: str
    executors: tuple[bytes, ...] = ()
    verifiers: tuple[bytes, ...] = ()
    result: Result | None = None
    quality: dict[bytes, float] = field(default_factory=dict)  # responded executor -> truth
    canaries: dict[str, dict[bytes, float | None]] = field(default_factory=dict)
    messages: int = 0
    rejected: int = 0
    ended_ms: int = 0


class SimNetwork:
    """Runs sessions one after another on a shared simulated clock."""

    def __init__(self, world: World, rng: random.Random, *, latency_ms: tuple[int, int] = (5, 60)):
        self.world = world
        self.rng = rng
        self.latency_ms = latency_ms
        self.now_ms = 0
        self._seq = itertools.count(1)

    def run_session(
        self,
        task: str,
        leader: bytes,
        joiners: Sequence[bytes],
        *,
        executors: int,
        aggregator: str,
        selection: Mapping[bytes, float] | None = None,
        weights: Mapping[bytes, float] | None = None,
        canary_rate: float = 0.1,
    ) -> SessionRun:
        """One session from advertisement to result; returns what it produced.

        ``selection``/``weights``: the leader's reputation weights for the role draw and the
        tally (``None``: uniform roles, every verifier 1.0).
        """
        run = SessionRun(task)
        queue: list[tuple[int, int, str, bytes, object]] = []
        subs: dict[str, set[bytes]] = {}
        advertise = Advertise(
            prompt=f"prompt of {task}",
            wanted=len(joiners),
            join_ms=10_000,
            exec_ms=60_000,
            verify_ms=60_000,
            aggregator=aggregator,
        )
        lead = LeaderSession(
            task,
            leader,
            advertise,
            rng=self.rng,
            auto_assign_at=len(joiners),
            executors=executors,
            weights=weights,
            selection_weights=selection,
            canary_rate=canary_rate,
        )
        machines: dict[bytes, LeaderSession | ParticipantSession] = {leader: lead}

        def later(delay: int, kind: str, peer: bytes, payload: object) -> None:
            heapq.heappush(queue, (self.now_ms + delay, next(self._seq), kind, peer, payload))

        def apply(peer: bytes, effects: list) -> None:  # type: ignore[type-arg]
            for effect in effects:
                if isinstance(effect, Publish):
                    publish(peer, effect.topic, effect.body)
                elif isinstance(effect, Subscribe):
                    subs.setdefault(effect.topic, set()).add(peer)
                elif isinstance(effect, Unsubscribe):
                    subs.get(effect.topic, set()).discard(peer)
                elif isinstance(effect, Generate):
                    later(self.rng.randint(*_GEN_MS), "generated", peer, None)
                elif isinstance(effect, Judge):
                    later(self.rng.randint(*_JUDGE_MS), "judged", peer, effect)
                elif isinstance(effect, Finished) and peer == leader:
                    run.result = effect.result
                elif isinstance(effect, Rejected):
                    run.rejected += 1
                    logger.warning("sim %s: %s rejected %s", task, peer.hex()[-6:], effect)

        def publish(sender: bytes, topic: str, body: Body) -> None:
            env = Envelope(
                PROTOCOL_VERSION,
                body.KIND,
                task,
                sender,
                next(self._seq),
                self.now_ms,
                body,
                b"",
                b"",
            )
            run.messages += 1
            targets = joiners if topic == MESH_TOPIC else sorted(subs.get(topic, ()))
            for target in targets:
                if target != sender:
                    later(self.rng.randint(*self.latency_ms), "deliver", target, env)

        apply(leader, lead.start(self.now_ms))
        while not lead.finished:
            if not queue:  # nothing in flight: let the earliest deadline pass
                due = [m.next_deadline() for m in machines.values() if not m.finished]
                self.now_ms = max(self.now_ms, min(d for d in due if d is not None))
                for peer, machine in list(machines.items()):
                    if not machine.finished:
                        apply(peer, machine.tick(self.now_ms))
                continue
            at, _, kind, peer, payload = heapq.heappop(queue)
            self.now_ms = max(self.now_ms, at)
            if kind == "deliver":
                env = payload
                assert isinstance(env, Envelope)
                if env.kind == "advertise" and peer not in machines:
                    machine = ParticipantSession.from_advertise(
                        env, peer, model="sim", backend="sim", batch_scores=True
                    )
                    machines[peer] = machine
                    apply(peer, machine.start(self.now_ms))
                elif peer in machines and not machines[peer].finished:
                    apply(peer, machines[peer].receive(env, self.now_ms))
            elif kind == "generated":
                machine = machines[peer]
                assert isinstance(machine, ParticipantSession)
                text, quality = self.world.answer(task, peer)
                run.quality[peer] = quality
                apply(peer, machine.generation_done(text, "sim", 1_000, self.now_ms))
            elif kind == "judged":
                machine = machines[peer]
                assert isinstance(machine, ParticipantSession) and isinstance(payload, Judge)
                # the simulator is omniscient: it reads the leader's label map to know the truth
                by_label = {label: ex for ex, label in lead.labels.items()}
                score = self.world.judge(
                    task,
                    peer,
                    by_label.get(payload.label),
                    payload.label,
                    by_label,
                    canary=payload.label in lead.canary_of,
                )
                apply(
                    peer, machine.judgement_done(payload.label, score, "", "sim-judge", self.now_ms)
                )
        run.executors, run.verifiers = lead.executors, lead.verifiers
        if run.result is not None:
            run.canaries = {k: dict(v) for k, v in run.result.canaries.items()}
        run.ended_ms = self.now_ms
        self.world.forget(task, run.executors)
        return run
