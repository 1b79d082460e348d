"""The session engine: drives the protocol's sans-IO session machines over a running node.

Theory of operation
-------------------
Each session this node leads or takes part in is one :class:`LiveSession`: a machine from
:mod:`protocol.session` plus the trio tasks that carry out its effects. Everything that touches
a machine runs on the trio side, synchronously, so no two inputs interleave:

- inbound: the runtime calls our topic handler with a verified envelope; we feed
  ``machine.receive(env, now)`` and apply the effects at once;
- local work: ``Generate``/``Judge`` effects start a task in the session's nursery (model calls
  cross to asyncio through ``runtime.run_asyncio``); its outcome is fed back
  (``generation_done``, ``judgement_failed``...). A verifier judges every response the moment it
  arrives, concurrently;
- time: one driver task per session sleeps until ``machine.next_deadline()`` *or* until an input
  changed the deadline (an event), then calls ``tick``. Nothing polls, nothing sleeps a fixed time:
  a session finishes as soon as its last expected message is in;
- outbound: ``Publish``/``Subscribe``/``Unsubscribe`` go, in order, through the session's outbox,
  drained by one sender task. Awaiting each publish paces bursts (ARCHITECTURE §10 item 13);
  verifiers batch their scores into one message (``Scores``) by default for the same reason.

Every envelope sent or accepted is written to the node's store (``node.store``) as raw bytes,
with the roles and the result, so ``rnet audit`` can re-verify the session later. Every change
of a machine's snapshot becomes a ``session`` event, every end a ``result`` event.

Commands registered in the runtime's interpreter: ``adv``, ``ack``, ``finalize``, ``pipe``
(and ``sessions``, a live list). The same engine serves ``rnet pipe`` and the HTTP gateway via
:meth:`SessionEngine.run_pipe`.
"""

from __future__ import annotations

import argparse
import functools
import logging
import math
import random
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from node import events as ev
from node.commands import CommandError, usage_error
from protocol.messages import AGGREGATORS

if TYPE_CHECKING:
    import trio

    from node.runtime import NodeRuntime
    from node.slm.base import Backend
    from node.store import Store
    from protocol.envelope import Envelope
    from protocol.messages import Result
    from protocol.session import Effect, LeaderSession, ParticipantSession, SessionSnapshot

logger = logging.getLogger(__name__)

DEFAULT_PROMPT = "What is the capital of France?"
# Finished sessions kept in memory (for `sessions`, late messages); older ones only in the store.
KEEP_FINISHED = 64


def now_ms() -> int:
    """The engine's clock: wall-clock epoch ms (the console shows deadlines as wall time)."""
    return time.time_ns() // 1_000_000


# ------------------------------------------------------------------------------------------------
# options
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """How this node leads and joins sessions. Durations in ms."""

    join_ms: int = 10_000
    # `adv` waits for a human's `ack`: its join window is longer unless --join-deadline is given.
    manual_join_ms: int = 60_000
    exec_ms: int = 60_000
    verify_ms: int = 60_000
    aggregator: str = "mean"
    split: str = "balanced"
    executors: int = 0  # > 0: this many executors per session led here (the rest verify)
    auto_join: bool = True
    max_sessions: int = 4  # participant sessions at once; more advertisements are declined
    batch_scores: bool = True
    grace_ms: int = 5_000

    def __post_init__(self) -> None:
        for name in ("join_ms", "manual_join_ms", "exec_ms", "verify_ms"):
            value = getattr(self, name)
            if not 1 <= value <= 3_600_000:
                raise ValueError(f"{name.replace('_ms', '')} deadline must be within 1 ms..1 h")
        if self.aggregator not in AGGREGATORS:
            raise ValueError(f"unknown aggregator {self.aggregator!r} ({', '.join(AGGREGATORS)})")
        if self.split not in ("balanced", "original"):
            raise ValueError(f"unknown split {self.split!r} (balanced, original)")
        if self.max_sessions < 0:
            raise ValueError("max sessions must be >= 0")
        if not 0 <= self.executors <= 64:
            raise ValueError("--executors must be between 0 (half the joiners) and 64")

    def fitted(self, timeout_s: float) -> SessionOptions:
        """Deadlines scaled down (if needed) so the whole session ends within ``timeout_s``.

        A ``pipe`` never waits past its timeout: its three stages must fit in it, with a small
        margin for the result to travel back.
        """
        budget = max(1, int(timeout_s * 1000 * 0.9) - 200)
        total = self.join_ms + self.exec_ms + self.verify_ms
        if total <= budget:
            return self
        f = budget / total
        return replace(
            self,
            join_ms=max(1, int(self.join_ms * f)),
            exec_ms=max(1, int(self.exec_ms * f)),
            verify_ms=max(1, int(self.verify_ms * f)),
        )


def add_session_flags(
    parser: argparse.ArgumentParser, *, leader: bool = True, participant: bool = True
) -> None:
    """Session options: ``leader`` ones (deadlines, aggregator, split) for whoever advertises,
    ``participant`` ones (auto-join, its limit) for providers. ``rnet pipe`` only leads."""
    g = parser.add_argument_group("sessions")
    if leader:
        g.add_argument(
            "--join-deadline",
            type=float,
            default=None,
            metavar="S",
            help="seconds a session waits for joins (default: 10; 60 for a manual adv)",
        )
        g.add_argument(
            "--exec-deadline",
            type=float,
            default=None,
            metavar="S",
            help="seconds executors have to answer (default: 60)",
        )
        g.add_argument(
            "--verify-deadline",
            type=float,
            default=None,
            metavar="S",
            help="seconds verifiers have to score after that (default: 60)",
        )
        g.add_argument(
            "--aggregator",
            choices=AGGREGATORS,
            default=None,
            help="how an executor's scores are combined (default: mean)",
        )
        g.add_argument(
            "--split",
            choices=("balanced", "original"),
            default=None,
            help="role split: balanced (n//2 executors, default) or original (random index)",
        )
        g.add_argument(
            "--executors",
            type=int,
            default=None,
            metavar="K",
            help="K of the joiners answer, the others judge (at least one judges); "
            "default: as --split says",
        )
    if participant and not any(a.dest == "no_auto_join" for a in parser._actions):
        g.add_argument(
            "--no-auto-join",
            action="store_true",
            default=False,
            help="do not join advertised sessions automatically",
        )
        g.add_argument(
            "--max-sessions",
            type=int,
            default=None,
            metavar="N",
            help="take part in at most N sessions at once (default: 4)",
        )


def options_from_args(args: Any) -> SessionOptions:
    """SessionOptions from parsed flags (any missing flag keeps its default). ValueError if bad."""
    base = SessionOptions()
    kw: dict[str, Any] = {}
    for flag, name in (
        ("join_deadline", "join_ms"),
        ("exec_deadline", "exec_ms"),
        ("verify_deadline", "verify_ms"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"--{flag.replace('_', '-')} must be a positive number of seconds")
            kw[name] = max(1, int(value * 1000))
            if name == "join_ms":
                kw["manual_join_ms"] = kw[name]
    for flag in ("aggregator", "split"):
        value = getattr(args, flag, None)
        if value:
            kw[flag] = value
    if getattr(args, "no_auto_join", False):
        kw["auto_join"] = False
    max_sessions = getattr(args, "max_sessions", None)
    if max_sessions is not None:
        kw["max_sessions"] = max_sessions
    executors = getattr(args, "executors", None)
    if executors is not None:
        kw["executors"] = executors
    return replace(base, **kw)


# ------------------------------------------------------------------------------------------------
# outcomes
# ------------------------------------------------------------------------------------------------


class SessionFailed(Exception):
    """A session ended without a winner. ``code``: not_enough_providers | deadline |
    empty_result | aborted | unavailable. ``str()`` is one line for the user."""

    def __init__(self, reason: str, code: str = "aborted", task: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.task = task


def _b58(peer: bytes | None) -> str | None:
    if peer is None:
        return None
    from protocol.identity import peer_id_to_str

    return peer_id_to_str(peer)


def _b58_map(d: Mapping[bytes, Any]) -> dict[str, Any]:
    from protocol.identity import peer_id_to_str

    return {peer_id_to_str(k): v for k, v in d.items()}


def _matrix(d: Mapping[bytes, Mapping[bytes, float | None]]) -> dict[str, dict[str, float | None]]:
    return {_b58(e): _b58_map(row) for e, row in d.items()}  # type: ignore[misc]


@dataclass
class LiveSession:
    """One session on this node: its machine, its tasks, and what the engine remembers."""

    task: str
    machine: LeaderSession | ParticipantSession
    is_leader: bool
    created_ms: int
    wake: trio.Event | None = None
    done: trio.Event | None = None
    outbox: Any = None  # trio MemorySendChannel of network ops
    outbox_drained: trio.Event | None = None
    nursery: trio.Nursery | None = None
    last_snapshot: SessionSnapshot | None = None
    stage_times: dict[str, int] = field(default_factory=dict)
    result_event: ev.Result | None = None
    abort_reason: str | None = None
    on_stage: Callable[[str], None] | None = None

    @property
    def finished(self) -> bool:
        return self.machine.finished


# ------------------------------------------------------------------------------------------------
# the engine
# ------------------------------------------------------------------------------------------------


class SessionEngine:
    """All sessions of one node. Create with :func:`attach_sessions` (before ``runtime.start``)."""

    def __init__(
        self,
        runtime: NodeRuntime,
        backend: Backend | None,
        store: Store | None,
        options: SessionOptions | None = None,
    ) -> None:
        self.runtime = runtime
        self.backend = backend
        self.store = store
        self.options = options or SessionOptions()
        self.sessions: dict[str, LiveSession] = {}
        self._rng = random.Random(secrets.randbits(64))

    # -- wiring -----------------------------------------------------------------------------

    def attach(self) -> None:
        rt = self.runtime
        rt.add_mesh_handler("advertise", self._on_advertise)
        rt.on_close(self._close)
        register_session_commands(rt.interpreter, self)
        rt.sessions = self  # the console and the gateway find the engine here

    async def _close(self) -> None:
        """Trio side, before the host closes: stop every session's tasks."""
        for live in list(self.sessions.values()):
            if live.nursery is not None:
                live.nursery.cancel_scope.cancel()
        if self.store is not None:
            self.store.close()
            self.store = None

    @property
    def me(self) -> bytes:
        return self.runtime.peer_id

    # -- starting sessions (trio side) ---------------------------------------------------------

    async def _on_advertise(self, env: Envelope) -> None:
        """A peer advertised a session on ``swarm/mesh``: join it (auto-join) or just show it."""
        from protocol.identity import short_id

        adv = env.body
        self.runtime.emit(
            ev.Message(
                topic="swarm/mesh",
                sender=_b58(env.sender) or "",
                kind="advertise",
                text=f"session {env.task} by {short_id(env.sender)}: {adv.prompt[:120]}",
            )
        )
        if env.sender == self.me or env.task in self.sessions:
            return  # our own echo, or a task id we already run (first advertiser wins)
        if self.store is not None and self.store.has_session(env.task):
            # A task id this node already took part in (before a restart, or a replayed
            # advertisement): joining again would mix two sessions in one transcript.
            logger.info("not joining %s: this node already has a session with that id", env.task)
            return
        if not self.options.auto_join or self.backend is None:
            return
        active = sum(1 for s in self.sessions.values() if not s.is_leader and not s.finished)
        if active >= self.options.max_sessions:
            logger.info("not joining %s: already in %d sessions (--max-sessions)", env.task, active)
            return
        from protocol.session import ParticipantSession

        machine = ParticipantSession.from_advertise(
            env,
            self.me,
            model=self.backend.model,
            backend=self.backend.backend,
            grace_ms=self.options.grace_ms,
            batch_scores=self.options.batch_scores,
        )
        live = self._new_live(env.task, machine, is_leader=False)
        self._record_session(live)
        self._store_envelope(env, "accepted")
        self.runtime.nursery.start_soon(self._drive, live)

    def _new_live(
        self, task: str, machine: LeaderSession | ParticipantSession, *, is_leader: bool
    ) -> LiveSession:
        import trio

        live = LiveSession(task=task, machine=machine, is_leader=is_leader, created_ms=now_ms())
        live.wake = trio.Event()
        live.done = trio.Event()
        live.outbox_drained = trio.Event()
        self.sessions[task] = live
        return live

    async def start_leader(
        self,
        task: str,
        prompt: str,
        *,
        wanted: int = 0,
        options: SessionOptions | None = None,
        on_stage: Callable[[str], None] | None = None,
        auto_finalize: bool = True,
    ) -> LiveSession:
        """Trio side: advertise a new session as its leader and start driving it.

        ``wanted`` >= 2 assigns roles as soon as that many joined (``pipe``); otherwise the
        operator's ``ack`` or the join deadline does. ``auto_finalize=False`` (the manual
        ``adv`` flow) waits for ``finalize`` or the verify deadline once every score is in.
        """
        from protocol.envelope import validate_task
        from protocol.errors import ProtocolError
        from protocol.messages import Advertise
        from protocol.session import LeaderSession

        opts = options or self.options
        try:
            validate_task(task)
            advertise = Advertise(
                prompt=prompt,
                wanted=wanted,
                join_ms=opts.join_ms,
                exec_ms=opts.exec_ms,
                verify_ms=opts.verify_ms,
                aggregator=opts.aggregator,
            )
        except ProtocolError as exc:
            raise CommandError(f"cannot advertise: {exc.message}") from None
        if task in self.sessions or (self.store is not None and self.store.has_session(task)):
            raise CommandError(
                f"session {task} already exists on this node (see `rnet sessions`); "
                "pick another topic"
            )
        machine = LeaderSession(
            task,
            self.me,
            advertise,
            rng=random.Random(self._rng.getrandbits(64)),
            auto_assign_at=wanted if wanted >= 2 else None,
            auto_finalize=auto_finalize,
            split=opts.split,
            executors=opts.executors,
        )
        live = self._new_live(task, machine, is_leader=True)
        live.on_stage = on_stage
        self._record_session(live)
        import trio

        # The driver must have its outbox before start() effects are applied.
        ready = trio.Event()
        self.runtime.nursery.start_soon(self._drive, live, ready)
        await ready.wait()
        return live

    # -- the driver (trio) ----------------------------------------------------------------------

    async def _drive(self, live: LiveSession, ready: trio.Event | None = None) -> None:
        """Run one session: its outbox sender, its model tasks, its deadlines."""
        import trio

        send, receive = trio.open_memory_channel[tuple[str, Any]](math.inf)
        live.outbox = send
        try:
            async with trio.open_nursery() as nursery:
                live.nursery = nursery
                nursery.start_soon(self._sender, live, receive)
                self._apply(live, live.machine.start(now_ms()))
                if ready is not None:
                    ready.set()
                while not live.machine.finished:
                    deadline = live.machine.next_deadline()
                    assert live.wake is not None
                    if deadline is None:
                        await live.wake.wait()
                    else:
                        wait_s = max(0.0, (deadline - now_ms()) / 1000)
                        with trio.move_on_after(wait_s):
                            await live.wake.wait()
                    if not live.machine.finished:
                        self._apply(live, live.machine.tick(now_ms()))
                    # Replaced after the tick: its own _apply sets the event, and waiting on
                    # that would wake at once and spin (a busy loop for the session's life).
                    live.wake = trio.Event()
                # Finished: let the outbox drain (the result must go out), then stop model work.
                send.close()
                with trio.move_on_after(5.0):
                    await live.outbox_drained.wait()
                nursery.cancel_scope.cancel()
        except Exception:
            logger.exception("session %s failed", live.task)
            self.runtime.emit(ev.Error(message=f"session {live.task} failed", source="sessions"))
        finally:
            if ready is not None:
                ready.set()
            live.nursery = None
            assert live.done is not None
            live.done.set()
            self._forget_old()

    def _forget_old(self) -> None:
        """Keep memory bounded on a long-running node: drop the oldest finished sessions
        (they stay in the store)."""
        finished = [
            t
            for t, s in self.sessions.items()
            if s.finished and s.done is not None and s.done.is_set()
        ]
        for task in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self.sessions[task]

    async def _sender(self, live: LiveSession, receive: Any) -> None:
        """Carry out network effects in order. Awaiting each publish paces bursts."""

        rt = self.runtime
        try:
            async for op, arg in receive:
                try:
                    if op == "subscribe":
                        # the first publish waits for a route if it needs one (_await_route)
                        await rt.join_topic(
                            arg, lambda env, _live=live: self._on_envelope(_live, env)
                        )
                    elif op == "unsubscribe":
                        await rt.leave_topic(arg)
                    else:
                        env = await rt.publish_envelope(
                            self._route_topic(arg.topic, arg.task), arg.body, arg.task
                        )
                        self._store_envelope(env, "sent")
                except Exception as exc:
                    # A publish that cannot go out is a missing message: the deadlines cope.
                    logger.warning("session %s: %s failed: %s", live.task, op, exc)
                    rt.emit(
                        ev.Error(
                            message=f"session {live.task}: {op} failed: {exc}", source="sessions"
                        )
                    )
        finally:
            live.outbox_drained.set()

    def _route_topic(self, topic: str, task: str) -> str:
        """The leader topic only works through the hub: floodsub forwards a topic only on nodes
        subscribed to it, and only the leader is on its leader topic. Without the hub (down,
        not reached) joins and scores go on the session topic, which every participant floods
        over the direct links; the leader listens on both."""
        from protocol.envelope import leader_topic

        if topic == leader_topic(task) and not self.runtime.host.hub_connected():
            return task
        return topic

    async def _on_envelope(self, live: LiveSession, env: Envelope) -> None:
        """Topic handler (trio): feed the machine, store what it accepted."""
        from protocol.session import Rejected

        finished = live.machine.finished
        effects = live.machine.receive(env, now_ms())
        # Stored only if accepted: no Rejected for it, and the session still live (a finished
        # machine answers late input with a Rejected("late") or, for echoes, nothing).
        if not finished and not any(
            isinstance(e, Rejected) and e.sender == env.sender for e in effects
        ):
            self._store_envelope(env, "accepted")
        self._apply(live, effects)

    # -- effects -------------------------------------------------------------------------------

    def _apply(self, live: LiveSession, effects: list[Effect]) -> None:
        """Carry out effects (synchronously: network ops are queued, model work is started)."""
        from protocol.session import (
            Aborted,
            Finished,
            Generate,
            Judge,
            Notice,
            Publish,
            Rejected,
            StageChanged,
            Subscribe,
            Unsubscribe,
        )

        for eff in effects:
            if isinstance(eff, Publish):
                live.outbox.send_nowait(("publish", eff))
            elif isinstance(eff, Subscribe):
                live.outbox.send_nowait(("subscribe", eff.topic))
            elif isinstance(eff, Unsubscribe):
                live.outbox.send_nowait(("unsubscribe", eff.topic))
            elif isinstance(eff, Generate):
                assert live.nursery is not None
                live.nursery.start_soon(self._generate, live, eff)
            elif isinstance(eff, Judge):
                assert live.nursery is not None
                live.nursery.start_soon(self._judge, live, eff)
            elif isinstance(eff, StageChanged):
                live.stage_times.setdefault(str(eff.stage), now_ms())
                if eff.stage == "execute":
                    self._record_roles(live)
                if live.on_stage is not None:
                    try:
                        live.on_stage(str(eff.stage))
                    except Exception:
                        logger.exception("stage callback failed")
            elif isinstance(eff, Finished):
                self._finish(live, eff.result)
            elif isinstance(eff, Aborted):
                live.abort_reason = eff.reason
                self._finish(live, None, reason=eff.reason)
            elif isinstance(eff, Rejected):
                self._report_reject(live, eff.reason, eff.sender, eff.kind, eff.detail)
            elif isinstance(eff, Notice):
                logger.warning("session %s: %s", live.task, eff.text)
        self._emit_snapshot(live)
        if live.wake is not None:
            live.wake.set()  # the deadline may have moved: the driver re-reads it

    def _report_reject(
        self, live: LiveSession, reason: str, sender: bytes, kind: str, detail: str
    ) -> None:
        self.runtime.reject(reason, _b58(sender) or "", live.task, f"{kind}: {detail}")

    async def _generate(self, live: LiveSession, eff: Any) -> None:
        import trio

        from node.slm.base import SLMError

        assert self.backend is not None
        started = time.perf_counter()
        params = dict(eff.params) or None
        try:
            with trio.fail_after(max(0.001, (eff.deadline_ms - now_ms()) / 1000)):
                gen = await self.runtime.run_asyncio(self.backend.generate, eff.prompt, params)
        except trio.TooSlowError:
            effects = live.machine.generation_failed("deadline passed", now_ms())
        except SLMError as exc:
            effects = live.machine.generation_failed(str(exc), now_ms())
        except Exception as exc:
            # Whatever broke in the model client, this executor is missing; the session goes on.
            logger.exception("session %s: generation failed", live.task)
            effects = live.machine.generation_failed(f"{type(exc).__name__}: {exc}", now_ms())
        else:
            gen_ms = int((time.perf_counter() - started) * 1000)
            effects = live.machine.generation_done(gen.text, gen.model, gen_ms, now_ms())
        self._apply(live, effects)

    async def _judge(self, live: LiveSession, eff: Any) -> None:
        import trio

        from node.slm.base import SLMError

        assert self.backend is not None
        try:
            with trio.fail_after(max(0.001, (eff.deadline_ms - now_ms()) / 1000)):
                j = await self.runtime.run_asyncio(self.backend.judge, eff.prompt, eff.text)
        except trio.TooSlowError:
            effects = live.machine.judgement_failed(eff.executor, "deadline passed", now_ms())
        except SLMError as exc:
            effects = live.machine.judgement_failed(eff.executor, str(exc), now_ms())
        except Exception as exc:
            logger.exception("session %s: judging failed", live.task)
            effects = live.machine.judgement_failed(
                eff.executor, f"{type(exc).__name__}: {exc}", now_ms()
            )
        else:
            if j.score is None:
                effects = live.machine.judgement_failed(
                    eff.executor, j.reason or "no score", now_ms()
                )
            else:
                effects = live.machine.judgement_done(
                    eff.executor, j.score, j.reason, j.model, now_ms()
                )
        self._apply(live, effects)

    # -- snapshots, results, store -------------------------------------------------------------

    def _emit_snapshot(self, live: LiveSession) -> None:
        snap = live.machine.snapshot()
        if snap == live.last_snapshot:
            return
        self.runtime.emit(snapshot_event(snap))
        previous = live.last_snapshot
        live.last_snapshot = snap
        if previous is None or (previous.stage, previous.role) != (snap.stage, snap.role):
            self._record_session(live)

    def _finish(self, live: LiveSession, result: Result | None, reason: str = "") -> None:
        machine = live.machine
        snap = machine.snapshot()
        evt = result_event(live.task, machine.leader, result, snap, self._timings(live))
        live.result_event = evt
        self.runtime.emit(evt)
        if reason:
            self.runtime.emit(
                ev.Error(
                    message=f"session {live.task} ended without a result: {reason}",
                    source="sessions",
                )
            )
        if self.store is not None:
            self.store.record_result(live.task, {**evt.to_dict(), "reason": reason}, at_ms=now_ms())

    def _timings(self, live: LiveSession) -> dict[str, float]:
        t = live.stage_times
        start = live.created_ms
        end = now_ms()
        out: dict[str, float] = {}
        marks = [("join", start, t.get("execute")), ("execute", t.get("execute"), t.get("verify"))]
        verify_end = t.get("finalize") or t.get("done") or t.get("aborted") or end
        marks.append(("verify", t.get("verify"), verify_end))
        for name, a, b in marks:
            if a is not None and b is not None:
                out[name] = float(b - a)
        out["total"] = float(end - start)
        return out

    def _record_session(self, live: LiveSession) -> None:
        if self.store is None:
            return
        m = live.machine
        try:
            self.store.upsert_session(
                live.task,
                leader=_b58(m.leader) or "",
                role=str(m.role),
                prompt=m.prompt,
                stage=str(m.stage),
                at_ms=now_ms(),
            )
        except Exception:
            logger.exception("store: session %s not recorded", live.task)

    def _record_roles(self, live: LiveSession) -> None:
        if self.store is None:
            return
        from protocol.identity import peer_id_to_str

        m = live.machine
        self.store.record_roles(
            live.task,
            [peer_id_to_str(p) for p in m.executors],
            [peer_id_to_str(p) for p in m.verifiers],
        )

    def _store_envelope(self, env: Envelope, direction: str) -> None:
        if self.store is None:
            return
        try:
            self.store.record_envelope(
                task=env.task,
                kind=env.kind,
                sender=_b58(env.sender) or "",
                seq=env.seq,
                ts_ms=env.ts_ms,
                raw=env.raw,
                direction=direction,
                at_ms=now_ms(),
            )
        except Exception:
            # A full disk must not stop the session; the audit will say what is missing.
            logger.exception("store: envelope of %s not recorded", env.task)

    # -- operator actions (asyncio side, through the bridge) ------------------------------------

    def _leader(self, task: str) -> LiveSession:
        live = self.sessions.get(task)
        if live is None:
            raise CommandError(f"no session {task!r} on this node (adv it first)")
        if not live.is_leader:
            raise CommandError(
                f"session {task} is led by another node; only its leader can do that"
            )
        return live

    async def _operator(self, task: str, action: str, prompt: str | None = None) -> str:
        """Trio side: ``ack`` / ``finalize`` on a session we lead."""
        from protocol.errors import StateError

        live = self._leader(task)
        machine = live.machine
        try:
            if action == "ack":
                if prompt:
                    machine.prompt = prompt  # the assignment carries the prompt to run
                effects = machine.ack(now_ms())
            else:
                effects = machine.finalize(now_ms())
        except StateError as exc:
            raise CommandError(f"{action} {task}: {exc.message}") from None
        self._apply(live, effects)
        snap = machine.snapshot()
        if action == "ack":
            return (
                f"{task}: {len(snap.executors)} executor(s) "
                f"{', '.join(_short(p) for p in snap.executors)}; {len(snap.verifiers)} verifier(s) "
                f"{', '.join(_short(p) for p in snap.verifiers)}"
            )
        return format_result(live.result_event) if live.result_event else f"{task}: {snap.stage}"

    async def run_pipe(
        self,
        prompt: str,
        providers: int,
        *,
        timeout_s: float = 60.0,
        aggregator: str | None = None,
        task: str | None = None,
        on_stage: Callable[[str], None] | None = None,
    ) -> ev.Result:
        """Asyncio side: one whole session as leader; the ``result`` event, or SessionFailed.

        Waits until ``providers`` joined or the join deadline, assigns, collects, finalizes as
        soon as every expected score is in (or at the verify deadline). Never past ``timeout_s``.
        """
        if providers < 2:
            raise SessionFailed(
                "a session needs at least 2 providers (1 executor, 1 verifier)", "unavailable"
            )
        opts = self.options.fitted(timeout_s)
        if aggregator:
            opts = replace(opts, aggregator=aggregator)
        task = task or new_task_id()
        return await self.runtime.call(
            self._pipe_trio, task, prompt, providers, opts, timeout_s, on_stage
        )

    async def _pipe_trio(
        self,
        task: str,
        prompt: str,
        providers: int,
        opts: SessionOptions,
        timeout_s: float,
        on_stage: Callable[[str], None] | None,
    ) -> ev.Result:
        import trio

        try:
            live = await self.start_leader(
                task, prompt, wanted=providers, options=opts, on_stage=on_stage
            )
        except CommandError as exc:
            raise SessionFailed(str(exc), "bad_input", task) from None
        assert live.done is not None
        try:
            with trio.move_on_after(timeout_s) as scope:
                await live.done.wait()
        finally:
            if not live.machine.finished:
                # Timed out or cancelled (client gone): end it visibly for everyone.
                self._apply(live, live.machine.abort(now_ms(), "the leader gave up (timeout)"))
        if scope.cancelled_caught and live.result_event is None:
            raise SessionFailed(
                f"session {task} passed its {timeout_s:g}s timeout", "deadline", task
            )
        evt = live.result_event
        if evt is None or evt.winner is None:
            reason = live.abort_reason or "no executor could be ranked"
            code = "not_enough_providers" if "not enough" in reason else "empty_result"
            raise SessionFailed(f"session {task}: {reason}", code, task)
        return evt

    def provider_models(self) -> dict[str, str]:
        """peer id (base58) -> model, for every provider seen in presence (for the gateway)."""
        return {p.peer_id: p.model for p in self.runtime.provider_peers() if p.model}


# ------------------------------------------------------------------------------------------------
# pure helpers: events from snapshots
# ------------------------------------------------------------------------------------------------


def _short(peer: bytes) -> str:
    from protocol.identity import short_id

    return short_id(peer)


def new_task_id() -> str:
    return f"task-{secrets.token_hex(4)}"


def _missing(snap: SessionSnapshot, result: Result | None) -> dict[str, Any]:
    """What did not arrive: executors without a response, verifiers without any score, and
    the empty cells (executor -> verifiers that did not score it)."""
    missing = result.missing if result is not None else snap.missing
    matrix = result.scores if result is not None else snap.scores
    responded = {e for e, text in snap.responses.items() if text is not None}
    if result is not None:
        responded |= {e for e in result.scores if e not in result.missing}
    cells = {
        _b58(e): [_b58(v) for v, s in row.items() if s is None]
        for e, row in matrix.items()
        if e in responded and any(s is None for s in row.values())
    }
    return {
        "executors": [_b58(p) for p in missing if p in snap.executors],
        "verifiers": [_b58(p) for p in missing if p in snap.verifiers],
        "scores": cells,
    }


def snapshot_event(snap: SessionSnapshot) -> ev.Session:
    return ev.Session(
        task=snap.task,
        leader=_b58(snap.leader) or "",
        role=str(snap.role),
        stage=str(snap.stage),
        stage_deadline_ms=snap.stage_deadline_ms,
        prompt=snap.prompt,
        joined=[_b58(p) for p in snap.joined],  # type: ignore[misc]
        executors=[_b58(p) for p in snap.executors],  # type: ignore[misc]
        verifiers=[_b58(p) for p in snap.verifiers],  # type: ignore[misc]
        responses=_b58_map(snap.responses),
        scores=_matrix(snap.scores),
        missing=_missing(snap, None),  # type: ignore[arg-type]
        averages=_b58_map(snap.averages),
        winner=_b58(snap.winner),
        counts={
            "joined": len(snap.joined),
            "executors": len(snap.executors),
            "verifiers": len(snap.verifiers),
            "responses": sum(1 for t in snap.responses.values() if t is not None),
            "responses_expected": len(snap.executors),
            "scores": sum(1 for row in snap.scores.values() for s in row.values() if s is not None),
            "scores_expected": sum(
                1
                for e, t in snap.responses.items()
                if t is not None
                for v in snap.verifiers
                if v != e
            ),
        },
    )


def result_event(
    task: str,
    leader: bytes,
    result: Result | None,
    snap: SessionSnapshot,
    timings: dict[str, float],
) -> ev.Result:
    if result is None:
        return ev.Result(
            task=task,
            leader=_b58(leader) or "",
            winner=None,
            score=None,
            text="",
            averages=_b58_map(snap.averages),
            scores=_matrix(snap.scores),
            missing=_missing(snap, None),  # type: ignore[arg-type]
            aggregator=snap.aggregator,
            timings=timings,
        )
    return ev.Result(
        task=task,
        leader=_b58(leader) or "",
        winner=_b58(result.winner),
        score=result.score,
        text=result.text,
        averages=_b58_map(result.averages),
        scores=_matrix(result.scores),
        missing=_missing(snap, result),  # type: ignore[arg-type]
        aggregator=result.aggregator,
        timings=timings,
    )


def format_result(evt: ev.Result | None) -> str:
    """The human-readable result: winner, score, text, the per-executor averages."""
    if evt is None:
        return "no result"
    if evt.winner is None:
        return f"{evt.task}: no winner (nothing could be ranked)"
    lines = [f"{evt.task}: winner {evt.winner[-6:]} score {evt.score:.2f} ({evt.aggregator})"]
    for peer, avg in sorted(evt.averages.items(), key=lambda kv: -(kv[1] or -1)):
        lines.append(f"  {peer[-6:]}  {'-' if avg is None else f'{avg:.2f}'}")
    lines.append(evt.text)
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# commands
# ------------------------------------------------------------------------------------------------


def register_session_commands(interpreter: Any, engine: SessionEngine) -> None:
    """``adv``, ``ack``, ``finalize``, ``pipe`` in the shared interpreter (handlers on asyncio)."""

    async def adv(runtime: Any, args: list[str]) -> str:
        usage = "adv <topic> [prompt]"
        if not args:
            raise usage_error(usage, "a topic (the session's task id) is needed")
        task, prompt = args[0], " ".join(args[1:]).strip() or DEFAULT_PROMPT
        manual = replace(engine.options, join_ms=engine.options.manual_join_ms)
        await runtime.call(
            functools.partial(
                engine.start_leader, task, prompt, options=manual, auto_finalize=False
            )
        )
        return f"advertised {task}: {prompt!r} (ack {task} once peers joined)"

    async def ack(runtime: Any, args: list[str]) -> str:
        if not args:
            raise usage_error("ack <topic> [prompt]")
        return await runtime.call(engine._operator, args[0], "ack", " ".join(args[1:]).strip())

    async def finalize(runtime: Any, args: list[str]) -> str:
        if len(args) != 1:
            raise usage_error("finalize <topic>")
        return await runtime.call(engine._operator, args[0], "finalize")

    async def pipe(runtime: Any, args: list[str]) -> str:
        usage = "pipe <provider_count> [prompt]"
        if not args:
            raise usage_error(usage)
        from node.commands import parse_int

        n = parse_int(args[0], "provider_count", usage, lo=2, hi=64)
        prompt = " ".join(args[1:]).strip() or DEFAULT_PROMPT
        opts = engine.options
        # Room for the configured deadlines as they are (see SessionOptions.fitted's margin).
        timeout_s = ((opts.join_ms + opts.exec_ms + opts.verify_ms) / 1000 + 0.2) / 0.9 + 1
        try:
            evt = await engine.run_pipe(prompt, n, timeout_s=timeout_s)
        except SessionFailed as exc:
            raise CommandError(str(exc)) from None
        return format_result(evt)

    async def sessions(runtime: Any, args: list[str]) -> str:
        if args:
            raise usage_error("sessions")
        if not engine.sessions:
            return "no sessions on this node"
        lines = []
        for task, live in engine.sessions.items():
            m = live.machine
            lines.append(
                f"{task:<24} {m.role!s:<9} {m.stage!s:<9} leader {_short(m.leader)}"
                f"  joined {len(m.joined)}  responses {len(m.responses)}/{len(m.executors)}"
            )
        return "\n".join(lines)

    interpreter.register(
        "sessions", "sessions", "list this node's sessions (role, stage, progress)", sessions
    )
    interpreter.register(
        "adv", "adv <topic> [prompt]", "advertise a session on swarm/mesh and wait for joins", adv
    )
    interpreter.register(
        "ack", "ack <topic> [prompt]", "assign executors/verifiers among those who joined", ack
    )
    interpreter.register(
        "finalize", "finalize <topic>", "tally what arrived and publish the result now", finalize
    )
    interpreter.register(
        "pipe",
        "pipe <provider_count> [prompt]",
        "run a whole session: advertise, assign, collect, finalize",
        pipe,
    )


def attach_sessions(
    runtime: NodeRuntime, backend: Backend | None, args: Any = None
) -> SessionEngine:
    """Create the engine for a provider node (called by ``build_runtime`` before start)."""
    from node.store import Store

    try:
        options = options_from_args(args) if args is not None else SessionOptions()
    except ValueError as exc:
        from node.runtime import RuntimeError_

        raise RuntimeError_(str(exc)) from None
    store = Store.in_data_dir(runtime.config.data_dir)
    engine = SessionEngine(runtime, backend, store, options)
    engine.attach()
    return engine
