"""The driver: carries out a session machine's effects over the running node (trio side).

Everything that touches a machine runs here, synchronously, so no two inputs interleave:

- inbound: :meth:`SessionDriver.on_envelope` feeds ``machine.receive(env, now)``;
- local work: ``Generate``/``Judge`` start a task in the session's nursery (model calls cross to
  asyncio through ``runtime.run_asyncio``); the outcome is fed back (``generation_done``...).
  A verifier judges each blind item the moment it arrives, concurrently;
- time: :meth:`SessionDriver.drive` sleeps until ``machine.next_deadline()`` *or* until an input
  moved the deadline (the ``wake`` event), then ``tick``\\ s. Nothing polls;
- outbound: ``Publish``/``Subscribe``/``Unsubscribe`` go, in order, through the session's outbox
  to one sender task. Awaiting each publish paces bursts (ARCHITECTURE §10 item 13).

Each effect type has its own ``case`` in :meth:`SessionDriver.apply`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from node import events as ev
from node.sessions.live import LiveSession, NetOp
from node.sessions.ports import SessionHost, mono_ms
from node.sessions.transcript import Transcript
from node.sessions.views import result_event, short_of, snapshot_event, winner_answer
from node.slm.base import SLMError
from protocol.effects import (
    Aborted,
    Effect,
    Finished,
    Generate,
    Judge,
    Notice,
    Publish,
    Rejected,
    Released,
    Stage,
    StageChanged,
    Subscribe,
    Unsubscribe,
)
from protocol.envelope import judge_topic, leader_topic
from protocol.identity import peer_id_to_str

if TYPE_CHECKING:
    from node.slm.base import Backend
    from protocol.envelope import Envelope
    from protocol.messages import Result

logger = logging.getLogger(__name__)

# How long a finished session may take to get its last messages (the result) out.
DRAIN_S = 5.0


class SessionDriver:
    """Drives every :class:`LiveSession` of one engine; ``on_done`` runs when one ends."""

    def __init__(
        self,
        runtime: SessionHost,
        backend: Backend | None,
        transcript: Transcript,
        on_done: Callable[[], None],
        on_applied: Callable[[LiveSession], None] | None = None,
        slots: int = 1,
    ) -> None:
        self.runtime = runtime
        self.backend = backend
        self.transcript = transcript
        self.on_done = on_done
        self.on_applied = on_applied  # after every apply (the engine recounts its slots)
        # Model calls at once never exceed the slots (Ollama's OLLAMA_NUM_PARALLEL; the sim
        # backend would run any number): a call beyond them waits, within its deadline.
        self.model_slots = trio.Semaphore(slots)

    # -- the session's life ---------------------------------------------------------------------

    async def drive(self, live: LiveSession, ready: trio.Event | None = None) -> None:
        """Run one session: its outbox sender, its model tasks, its deadlines."""
        send, receive = trio.open_memory_channel[NetOp](math.inf)
        live.outbox = send
        try:
            async with trio.open_nursery() as nursery:
                live.nursery = nursery
                nursery.start_soon(self._sender, live, receive)
                self.apply(live, live.machine.start(mono_ms()))
                if ready is not None:
                    ready.set()
                while not live.machine.finished:
                    deadline = live.machine.next_deadline()
                    if deadline is None:
                        await live.wake.wait()
                    else:
                        with trio.move_on_after(max(0.0, (deadline - mono_ms()) / 1000)):
                            await live.wake.wait()
                    if not live.machine.finished:
                        self.apply(live, live.machine.tick(mono_ms()))
                    # Replaced after the tick: its own apply sets the event, and waiting on
                    # that would wake at once and spin (a busy loop for the session's life).
                    live.wake = trio.Event()
                # Finished: let the outbox drain (the result must go out), then stop model work.
                send.close()
                with trio.move_on_after(DRAIN_S):
                    await live.outbox_drained.wait()
                self._count(live)
                nursery.cancel_scope.cancel()
        except Exception:
            logger.exception("session %s failed", live.task)
            self.runtime.emit(ev.Error(message=f"session {live.task} failed", source="sessions"))
        finally:
            if ready is not None:
                ready.set()
            live.nursery = None
            live.done.set()
            self.on_done()

    async def _sender(self, live: LiveSession, receive: trio.MemoryReceiveChannel[NetOp]) -> None:
        """Carry out network effects in order. Awaiting each publish paces bursts."""
        rt = self.runtime
        try:
            async for op in receive:
                try:
                    match op:
                        case Subscribe(topic=topic):
                            # the first publish waits for a route if it needs one
                            await rt.join_topic(
                                topic, lambda env, _live=live: self.on_envelope(_live, env)
                            )
                        case Unsubscribe(topic=topic):
                            await rt.leave_topic(topic)
                        case Publish(topic=topic, task=task, body=body):
                            env = await rt.publish_envelope(
                                self._route_topic(topic, task), body, task
                            )
                            self.transcript.envelope(env, "sent")
                except Exception as exc:
                    # A publish that cannot go out is a missing message: the deadlines cope.
                    name = type(op).__name__.lower()
                    logger.warning("session %s: %s failed: %s", live.task, name, exc)
                    rt.emit(
                        ev.Error(
                            message=f"session {live.task}: {name} failed: {exc}",
                            source="sessions",
                        )
                    )
        finally:
            live.outbox_drained.set()

    def _count(self, live: LiveSession) -> None:
        """The session is over and what it sent is stored (the leader's result goes out
        through the outbox): count it in the reputation book, say whose standing changed."""
        changed = self.transcript.count(live.task, live.machine.me)
        if changed:
            self.runtime.emit(ev.Reputation(peers=changed))

    def _route_topic(self, topic: str, task: str) -> str:
        """The leader and judge topics only work through the hub: floodsub forwards a topic
        only on nodes subscribed to it, and only the leader is on its leader topic (executors
        leave the judge topic). Without the hub (down, not reached) joins, answers, items and
        scores go on the session topic, which every participant floods over the direct links;
        the machines ignore what is not theirs. Blindness then rests on honest peers: an
        executor's node receives the items too, and its machine drops them."""
        if (
            topic in (leader_topic(task), judge_topic(task))
            and not self.runtime.host.hub_connected()
        ):
            return task
        return topic

    async def on_envelope(self, live: LiveSession, env: Envelope) -> None:
        """Topic handler (trio): feed the machine, store what it accepted."""
        finished = live.machine.finished
        effects = live.machine.receive(env, mono_ms())
        # Stored only if accepted: no Rejected for it, and the session still live (a finished
        # machine answers late input with a Rejected("late") or, for echoes, nothing).
        if not finished and not any(
            isinstance(e, Rejected) and e.sender == env.sender for e in effects
        ):
            self.transcript.envelope(env, "accepted")
        self.apply(live, effects)

    # -- effects ---------------------------------------------------------------------------------

    def apply(self, live: LiveSession, effects: list[Effect]) -> None:
        """Carry out effects (synchronously: network ops are queued, model work is started)."""
        for eff in effects:
            match eff:
                case Publish() | Subscribe() | Unsubscribe():
                    assert live.outbox is not None, "the driver opens the outbox before start()"
                    live.outbox.send_nowait(eff)
                case Generate():
                    assert live.nursery is not None
                    live.nursery.start_soon(self._generate, live, eff)
                case Judge():
                    assert live.nursery is not None
                    live.nursery.start_soon(self._judge, live, eff)
                case StageChanged(stage=stage):
                    live.stage_times.setdefault(str(stage), mono_ms())
                    if stage == Stage.EXECUTE:
                        self.transcript.roles(live)
                        snap = live.machine.snapshot()
                        wanted, joined = live.machine.advertise.wanted, len(snap.joined)
                        if live.is_leader and joined < wanted:
                            logger.warning("session %s: %s", live.task, short_of(wanted, joined))
                    if live.on_stage is not None:
                        try:
                            live.on_stage(str(stage))
                        except Exception:
                            logger.exception("stage callback failed")
                case Finished(result=result):
                    self._finish(live, result)
                case Aborted(reason=reason, cause=cause):
                    live.abort_reason, live.abort_cause = reason, cause
                    self._finish(live, None, reason=reason)
                case Released(reason=reason):
                    # Its slot is free now: a finished machine no longer counts against
                    # --max-sessions. A joiner that was not picked ends here, quietly.
                    logger.info("session %s: released (%s)", live.task, reason)
                case Rejected(reason=reason, sender=sender, kind=kind, detail=detail):
                    self.runtime.reject(
                        reason, peer_id_to_str(sender), live.task, f"{kind}: {detail}"
                    )
                case Notice(text=text):
                    logger.warning("session %s: %s", live.task, text)
        self._emit_snapshot(live)
        live.wake.set()  # the deadline may have moved: the driver re-reads it
        if self.on_applied is not None:
            self.on_applied(live)

    async def _generate(self, live: LiveSession, eff: Generate) -> None:
        assert self.backend is not None
        started = time.perf_counter()
        params = {**eff.params, **eff.options.as_params()} or None
        generate = functools.partial(
            self.backend.generate,
            format=eff.format,
            tools=eff.tools,
            tool_choice=eff.tool_choice,
        )
        try:
            with trio.fail_after(max(0.001, (eff.deadline_ms - mono_ms()) / 1000)):
                async with self.model_slots:
                    gen = await self.runtime.run_asyncio(generate, eff.prompt, params)
        except trio.TooSlowError:
            effects = live.machine.generation_failed("deadline passed", mono_ms())
        except SLMError as exc:
            effects = live.machine.generation_failed(str(exc), mono_ms())
        except Exception as exc:
            # Whatever broke in the model client, this executor is missing; the session goes on.
            logger.exception("session %s: generation failed", live.task)
            effects = live.machine.generation_failed(f"{type(exc).__name__}: {exc}", mono_ms())
        else:
            gen_ms = int((time.perf_counter() - started) * 1000)
            effects = live.machine.generation_done(
                gen.text, gen.model, gen_ms, mono_ms(), **gen.response_fields()
            )
        self.apply(live, effects)

    async def _judge(self, live: LiveSession, eff: Judge) -> None:
        assert self.backend is not None
        machine = live.machine
        try:
            with trio.fail_after(max(0.001, (eff.deadline_ms - mono_ms()) / 1000)):
                async with self.model_slots:
                    j = await self.runtime.run_asyncio(self.backend.judge, eff.prompt, eff.text)
        except trio.TooSlowError:
            effects = machine.judgement_failed(eff.label, "deadline passed", mono_ms())
        except SLMError as exc:
            effects = machine.judgement_failed(eff.label, str(exc), mono_ms())
        except Exception as exc:
            logger.exception("session %s: judging failed", live.task)
            effects = machine.judgement_failed(eff.label, f"{type(exc).__name__}: {exc}", mono_ms())
        else:
            if j.score is None:
                effects = machine.judgement_failed(eff.label, j.reason or "no score", mono_ms())
            else:
                effects = machine.judgement_done(eff.label, j.score, j.reason, j.model, mono_ms())
        self.apply(live, effects)

    # -- what the session shows and keeps ------------------------------------------------------

    def _emit_snapshot(self, live: LiveSession) -> None:
        snap = live.machine.snapshot()
        if snap == live.last_snapshot:
            return
        self.runtime.emit(snapshot_event(snap))
        previous = live.last_snapshot
        live.last_snapshot = snap
        if previous is None or (previous.stage, previous.role) != (snap.stage, snap.role):
            self.transcript.session(live)

    def _finish(self, live: LiveSession, result: Result | None, reason: str = "") -> None:
        machine = live.machine
        evt = result_event(
            machine.snapshot(), result, _timings(live), reason, requested=machine.advertise.wanted
        )
        # the leader holds every counted response (signed envelopes); the gateway wants the winner's
        responses = getattr(machine, "responses", {})
        answers = {ex: env.body for ex, env in responses.items()}
        evt = dataclasses.replace(evt, answer=winner_answer(answers, result))
        if machine.invalid:  # answers dropped for breaking the requested format/tools
            invalid = {peer_id_to_str(p): why for p, why in machine.invalid.items()}
            evt = dataclasses.replace(
                evt, missing=dataclasses.replace(evt.missing, invalid=invalid)
            )
        live.result_event = evt
        self.runtime.emit(evt)
        if reason:
            self.runtime.emit(
                ev.Error(
                    message=f"session {live.task} ended without a result: {reason}",
                    source="sessions",
                )
            )
        self.transcript.result(evt)


def _timings(live: LiveSession) -> dict[str, float]:
    """Stage durations in ms (monotonic): join, execute, verify, total."""
    t = live.stage_times
    start = live.created_ms
    end = mono_ms()
    out: dict[str, float] = {}
    marks = [("join", start, t.get("execute")), ("execute", t.get("execute"), t.get("verify"))]
    verify_end = t.get("finalize") or t.get("done") or t.get("aborted") or end
    marks.append(("verify", t.get("verify"), verify_end))
    for name, a, b in marks:
        if a is not None and b is not None:
            out[name] = float(b - a)
    out["total"] = float(end - start)
    return out
