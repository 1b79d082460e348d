"""The session engine: every session this node leads or takes part in.

Theory of operation
-------------------
Each session is one :class:`~node.sessions.live.LiveSession`: a machine from
:mod:`protocol.session` plus the trio tasks that carry out its effects
(:mod:`node.sessions.driver`). The engine starts sessions and answers the operator:

- advertise: :meth:`SessionEngine.start_leader` builds a ``LeaderSession`` and starts its driver;
  an advertisement from a peer (``_on_advertise``, a ``swarm/mesh`` handler) becomes a
  ``ParticipantSession`` when auto-join allows it;
- execute / verify: the driver (model calls, deadlines, network effects);
- finalize: :meth:`SessionEngine.ack` / :meth:`SessionEngine.finalize` on a session led here,
  or the machine on its own (``pipe``, deadlines);
- :meth:`SessionEngine.run_pipe` runs one whole session for ``rnet pipe`` and the HTTP gateway.

Every change of a machine's snapshot becomes a ``session`` event, every end a ``result`` event
(:mod:`node.sessions.views`); the transcript goes to the store (:mod:`node.sessions.transcript`).
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import trio

from node import events as ev
from node.commands import CommandError
from node.sessions.commands import register_session_commands
from node.sessions.driver import SessionDriver
from node.sessions.live import FailureCode, LiveSession, SessionFailed, StageCallback, pipe_outcome
from node.sessions.options import SessionOptions
from node.sessions.ports import ReputationSource, SessionHost, mono_ms
from node.sessions.slots import PENDING_HOLD_MS, ProviderSlots, default_slots, pending_by_leader
from node.sessions.transcript import Transcript
from node.sessions.views import format_result, format_roles
from protocol.admission import advert_refusal, lacking_capabilities, leaders_at_cap
from protocol.envelope import validate_task
from protocol.errors import ProtocolError, StateError
from protocol.identity import peer_id_to_str, short_id
from protocol.messages import MESH_TOPIC, Advertise
from protocol.session import LeaderSession, ParticipantSession

if TYPE_CHECKING:
    from node.slm.base import Backend
    from node.store import Store
    from protocol.envelope import Envelope

logger = logging.getLogger(__name__)


# Finished sessions kept in memory (for `sessions`, late messages); older ones only in the store.
KEEP_FINISHED = 64


def new_task_id() -> str:
    return f"task-{secrets.token_hex(4)}"


class SessionEngine:
    """All sessions of one node. Construct, then :meth:`attach` before ``runtime.start``."""

    def __init__(
        self,
        runtime: SessionHost,
        backend: Backend | None,
        store: Store | None,
        options: SessionOptions | None = None,
    ) -> None:
        self.runtime = runtime
        self.backend = backend
        self.first_seen: Mapping[bytes, int] = {}  # the node's live table (newcomer rule)
        self.transcript = Transcript(store)
        self.options = options or SessionOptions()
        self.sessions: dict[str, LiveSession] = {}
        # Why this node takes no executor/verifier role now ("": it joins); set while its model
        # does not answer. It still relays and leads.
        self.unavailable = ""
        self._rng = random.Random(secrets.randbits(64))
        # capacity: model slots (--slots; assemble.py resolves the backend's default)
        kind = backend.backend if backend is not None else "ollama"
        self.slots = ProviderSlots(self.options.slots or default_slots(kind, {}))
        self._driver = SessionDriver(
            runtime,
            backend,
            self.transcript,
            self._forget_old,
            on_applied=self._after_apply,
            slots=self.slots.total,
        )
        # The node's reputation book (issue 16), when it keeps one: verifier weights for the
        # tally and selection weights for the judging seats of sessions led here.
        self.reputation: ReputationSource | None = None

    @property
    def store(self) -> Store | None:
        return self.transcript.store

    @property
    def me(self) -> bytes:
        return self.runtime.peer_id

    # -- wiring ---------------------------------------------------------------------------------

    def attach(self) -> None:
        """Hook into the runtime: advertisements on ``swarm/mesh``, the close, the commands."""
        rt = self.runtime
        rt.add_mesh_handler("advertise", self._on_advertise)
        rt.on_close(self._close)
        register_session_commands(rt.interpreter, self)

    async def _close(self) -> None:
        """Trio side, before the host closes: stop every session's tasks. A session this node
        leads and that has not ended is stored as aborted (Ctrl-C during ``rnet pipe``), so the
        store never shows it waiting in ``advertise`` forever."""
        for live in list(self.sessions.values()):
            if live.nursery is not None:
                live.nursery.cancel_scope.cancel()
            if live.is_leader and not live.machine.finished:
                assert isinstance(live.machine, LeaderSession)
                live.machine.abort(mono_ms(), "the leader stopped")
                self.transcript.session(live)
        self.transcript.close()

    # -- starting sessions (trio side) ----------------------------------------------------------

    async def _on_advertise(self, env: Envelope, *, again: bool = False) -> None:
        """A peer advertised a session on ``swarm/mesh``: join it (auto-join) or just show it.
        ``again``: a declined advertisement weighed again now that a slot is free."""
        adv = env.body
        assert isinstance(adv, Advertise)
        if not again:
            self.runtime.emit(
                ev.Message(
                    topic=MESH_TOPIC,
                    sender=peer_id_to_str(env.sender),
                    kind="advertise",
                    text=f"session {env.task} by {short_id(env.sender)}: {adv.prompt[:120]}",
                )
            )
        if env.sender == self.me or env.task in self.sessions:
            return  # our own echo, or a task id we already run (first advertiser wins)
        if self.transcript.has_session(env.task):
            # A task id this node already took part in (before a restart, or a replayed
            # advertisement): joining again would mix two sessions in one transcript.
            logger.info("not joining %s: this node already has a session with that id", env.task)
            return
        if not self.options.auto_join or self.backend is None:
            return
        if self.unavailable:
            logger.info("not joining %s: %s", env.task, self.unavailable)
            return
        lacking = lacking_capabilities(adv, self._capabilities())
        if lacking:
            logger.info("not joining %s: this model does not support %s", env.task, lacking)
            return
        why = advert_refusal(adv, self.options.join_policy)
        if why is not None:
            logger.info("not joining %s: %s", env.task, why)
            return
        # Remembered first, then joined as slots and the per-leader cap allow: one path,
        # round-robin per leader, so a leader that advertises a lot cannot crowd the others out
        # (protocol/capacity.py, protocol/admission.py).
        self.slots.remember(env, mono_ms() + adv.join_ms)
        self._fill_slots()

    def _capabilities(self) -> tuple[str, ...]:
        return tuple(getattr(self.backend, "capabilities", ()) or ())

    def _fill_slots(self) -> None:
        """Join remembered adverts while a slot is free (and --max-sessions allows)."""
        now = mono_ms()
        while not self.unavailable:
            use = self.slots.use(self.sessions.values(), now)
            active = sum(1 for s in self.sessions.values() if not s.is_leader and not s.finished)
            if use.free <= 0 or active >= self.options.max_sessions:
                if len(self.slots.waiting):
                    logger.debug(
                        "full (%s slots, %d sessions): %d adverts wait",
                        use,
                        active,
                        len(self.slots.waiting),
                    )
                return
            # at most --max-per-leader sessions of one leader gathering joins here (a leader
            # cannot park this node in sessions that never start): its adverts wait meanwhile
            gathering = pending_by_leader(self.sessions.values())
            capped = leaders_at_cap(gathering, self.options.join_policy)
            env = self.slots.next_waiting(now, skip=capped)
            if env is None:
                return
            if env.task in self.sessions or self.transcript.has_session(env.task):
                continue
            self._join(env)

    def _join(self, env: Envelope) -> None:
        assert self.backend is not None
        machine = ParticipantSession.from_advertise(
            env,
            self.me,
            model=self.backend.model,
            backend=self.backend.backend,
            grace_ms=self.options.grace_ms,
            batch_scores=self.options.batch_scores,
            capabilities=self._capabilities(),
        )
        live = self._new_live(env.task, machine, is_leader=False)
        self.transcript.session(live)
        self.transcript.envelope(env, "accepted")
        self.runtime.nursery.start_soon(self._driver.drive, live)
        # a session still gathering after PENDING_HOLD_MS gives its slot back: look again then
        self.runtime.nursery.start_soon(self._refill_after_hold)

    async def _refill_after_hold(self) -> None:
        await trio.sleep(PENDING_HOLD_MS / 1000)
        self._fill_slots()

    def _after_apply(self, live: LiveSession) -> None:
        """A session's effects were applied: a slot may have freed (answer sent, judged,
        not picked, finished)."""
        if not live.is_leader:
            self._fill_slots()

    def _new_live(
        self, task: str, machine: LeaderSession | ParticipantSession, *, is_leader: bool
    ) -> LiveSession:
        live = LiveSession(task=task, machine=machine, is_leader=is_leader, created_ms=mono_ms())
        self.sessions[task] = live
        return live

    async def start_leader(
        self,
        task: str,
        prompt: str,
        *,
        wanted: int = 0,
        options: SessionOptions | None = None,
        on_stage: StageCallback | None = None,
        auto_finalize: bool = True,
        generation: Mapping[str, Any] | None = None,
    ) -> LiveSession:
        """Trio side: advertise a new session as its leader and start driving it.

        ``wanted`` >= 2 assigns roles as soon as that many joined (``pipe``); otherwise the
        operator's ``ack`` or the join deadline does. ``auto_finalize=False`` (the manual
        ``adv`` flow) waits for ``finalize`` or the verify deadline once every score is in.
        ``generation``: Advertise generation fields (``options``, ``format``, ``tools``,
        ``tool_choice``; see :mod:`protocol.generation`).
        """
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
                **(generation or {}),
            )
        except ProtocolError as exc:
            raise CommandError(f"cannot advertise: {exc.message}") from None
        if task in self.sessions or self.transcript.has_session(task):
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
            canary_rate=opts.canary_rate,
            canary_texts=[t for p, t in self.transcript.recent_answers() if p != prompt],
            weights=self.reputation.verifier_weights() if self.reputation else None,
            selection_weights=self.reputation.selection_weights() if self.reputation else None,
            newcomers=opts.newcomer_rule(self.first_seen),
        )
        live = self._new_live(task, machine, is_leader=True)
        live.on_stage = on_stage
        self.transcript.session(live)
        # The driver must have its outbox before start() effects are applied.
        ready = trio.Event()
        self.runtime.nursery.start_soon(self._driver.drive, live, ready)
        await ready.wait()
        return live

    def _forget_old(self) -> None:
        """Keep memory bounded on a long-running node: drop the oldest finished sessions
        (they stay in the store)."""
        finished = [t for t, s in self.sessions.items() if s.finished and s.done.is_set()]
        for task in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self.sessions[task]

    # -- operator actions (trio side; the commands cross with runtime.call) --------------------

    def _leader(self, task: str) -> LiveSession:
        live = self.sessions.get(task)
        if live is None:
            raise CommandError(f"no session {task!r} on this node (adv it first)")
        if not live.is_leader:
            raise CommandError(
                f"session {task} is led by another node; only its leader can do that"
            )
        return live

    async def ack(self, task: str, prompt: str = "") -> str:
        """Assign executors and verifiers among those who joined (``prompt`` replaces the
        advertised one: the assignment carries the prompt to run)."""
        live = self._leader(task)
        machine = live.machine
        assert isinstance(machine, LeaderSession)
        try:
            if prompt:
                machine.prompt = prompt
            effects = machine.ack(mono_ms())
        except StateError as exc:
            raise CommandError(f"ack {task}: {exc.message}") from None
        self._driver.apply(live, effects)
        return format_roles(machine.snapshot())

    async def finalize(self, task: str) -> str:
        """Tally what arrived and publish the result now."""
        live = self._leader(task)
        machine = live.machine
        assert isinstance(machine, LeaderSession)
        try:
            effects = machine.finalize(mono_ms())
        except StateError as exc:
            raise CommandError(f"finalize {task}: {exc.message}") from None
        self._driver.apply(live, effects)
        if live.result_event is not None:
            return format_result(live.result_event)
        return f"{task}: {machine.stage}"

    async def run_pipe(
        self,
        prompt: str,
        providers: int,
        *,
        timeout_s: float = 60.0,
        aggregator: str | None = None,
        task: str | None = None,
        on_stage: StageCallback | None = None,
        generation: Mapping[str, Any] | None = None,
    ) -> ev.Result:
        """Asyncio side: one whole session as leader; the ``result`` event, or SessionFailed.

        Waits until ``providers`` joined or the join deadline, assigns, collects, finalizes as
        soon as every expected score is in (or at the verify deadline). Never past ``timeout_s``.
        """
        if providers < 2:
            raise SessionFailed(
                "a session needs at least 2 providers (1 executor, 1 verifier)",
                FailureCode.UNAVAILABLE,
            )
        opts = self.options.fitted(timeout_s)
        if aggregator:
            opts = replace(opts, aggregator=aggregator)
        task = task or new_task_id()
        return await self.runtime.call(
            self._pipe_trio, task, prompt, providers, opts, timeout_s, on_stage, generation
        )

    async def _pipe_trio(
        self,
        task: str,
        prompt: str,
        providers: int,
        opts: SessionOptions,
        timeout_s: float,
        on_stage: StageCallback | None,
        gen: Mapping[str, Any] | None = None,  # Advertise generation fields
    ) -> ev.Result:
        try:
            live = await self.start_leader(
                task, prompt, wanted=providers, options=opts, on_stage=on_stage, generation=gen
            )
        except CommandError as exc:
            raise SessionFailed(str(exc), FailureCode.BAD_INPUT, task) from None
        scope = trio.move_on_after(timeout_s)
        try:
            with scope:
                await live.done.wait()
        finally:
            if not live.machine.finished:
                # Timed out or cancelled (client gone, Ctrl-C): end it visibly for everyone.
                assert isinstance(live.machine, LeaderSession)
                why = "timeout" if scope.cancelled_caught else "stopped"
                effects = live.machine.abort(mono_ms(), f"the leader gave up ({why})")
                self._driver.apply(live, effects)
        return pipe_outcome(live, task, scope.cancelled_caught, timeout_s)

    def provider_models(self) -> dict[str, str]:
        """peer id (base58) -> model, for every provider seen in presence (for the gateway)."""
        return {
            p.peer_id: p.model for p in self.runtime.provider_peers() if p.model and not p.status
        }
