"""The node side: a running ``NodeRuntime`` and its sessions engine as ``SwarmSessions``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from node import events as ev
from node.gateway.config import GatewayConfig
from node.gateway.server import GatewayHandle, serve_swarm
from node.gateway.swarm import Generation, StageCallback, SwarmResult, SwarmUnavailable
from node.gateway_settings import DEFAULT_LISTEN
from node.sessions.live import SessionFailed
from protocol.capacity import peak_slots

if TYPE_CHECKING:
    from node.sessions.engine import SessionEngine


class _Peer(Protocol):
    @property
    def peer_id(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def slots(self) -> int: ...
    @property
    def capabilities(self) -> tuple[str, ...]: ...
    @property
    def status(self) -> str: ...


class ProviderDirectory(Protocol):
    """What the gateway needs of the runtime: who this node is and which providers it knows."""

    peer_id_str: str

    def provider_peers(self) -> Sequence[_Peer]: ...


class RuntimeSwarm:
    """:class:`SwarmSessions` over a running ``NodeRuntime`` and its sessions engine.

    Each ``run`` is one ``SessionEngine.run_pipe`` (node/sessions.py): this node advertises,
    waits for ``providers`` joins (or the join deadline), assigns, collects and finalizes.
    Cancelling ``run`` (client gone) cancels the trio side, which aborts the session visibly.
    """

    def __init__(self, runtime: ProviderDirectory, engine: SessionEngine | None) -> None:
        self.runtime = runtime
        self.engine = engine

    def _engine(self) -> SessionEngine:
        engine = self.engine
        if engine is None:
            raise SwarmUnavailable(
                "this node runs no sessions engine (start it as a provider node)", "unavailable"
            )
        return engine

    def join_window_s(self, timeout_s: float) -> float:
        """The join deadline of a session run with ``timeout_s`` (the engine fits its stages)."""
        engine = self.engine
        if engine is None:
            return 0.0  # run() fails at once: nothing to wait for
        return engine.options.fitted(timeout_s).join_ms / 1000

    def provider_models(self) -> Mapping[str, str]:
        me = self.runtime.peer_id_str
        return {
            peer.peer_id: peer.model
            for peer in self.runtime.provider_peers()
            if peer.model and peer.peer_id != me
        }

    def capacity(self, providers: int) -> int:
        """Sessions of ``providers`` participants the swarm can run at once: the model slots
        its providers announce (1 for one that announces none) over the slots one session
        holds at its busiest (``protocol.capacity.peak_slots``: its executors answer, then its
        verifiers judge; a slot is held only for that), at least 1. Requests beyond it wait in
        the gateway's queue (node/gateway/queue.py)."""
        me = self.runtime.peer_id_str
        peers = [p for p in self.runtime.provider_peers() if p.model and p.peer_id != me]
        slots = sum(max(1, getattr(p, "slots", 0)) for p in peers)
        # a session needs that many *different* providers: slots beyond that do not help
        if len(peers) < providers:
            return 1
        executors = self.engine.options.executors if self.engine is not None else 0
        return max(1, slots // peak_slots(providers, executors))

    def queue_changed(self, running: int, waiting: int, capacity: int) -> None:
        """The gateway's queue moved: an event for the console and ``--json``."""
        emit = getattr(self.runtime, "emit", None)
        if callable(emit):
            emit(ev.GatewayQueue(running=running, waiting=waiting, capacity=capacity))

    def capabilities(self) -> set[str]:
        """The union of what the providers seen in presence announce (tools, json); a provider
        whose model does not answer (a presence ``status``) can do nothing now."""
        me = self.runtime.peer_id_str
        return {
            cap
            for peer in self.runtime.provider_peers()
            if peer.model and peer.peer_id != me and not peer.status
            for cap in peer.capabilities
        }

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
        engine = self._engine()
        try:
            result = await engine.run_pipe(
                prompt,
                providers,
                timeout_s=timeout_s,
                aggregator=aggregator,
                on_stage=on_stage,
                generation=generation.advertise_fields() if generation else None,
            )
        except SessionFailed as exc:
            raise SwarmUnavailable(exc.reason, exc.code) from None
        return self._swarm_result(result)

    def _swarm_result(self, result: ev.Result) -> SwarmResult:
        """The engine's ``result`` event as the gateway's SwarmResult (models from presence)."""
        known = self.provider_models()
        participants = set(result.averages)
        for row in result.scores.values():
            participants.update(row)
        return SwarmResult(
            task=result.task,
            winner=result.winner or "",
            score=result.score if result.score is not None else 0.0,
            text=result.text,
            averages=dict(result.averages),
            scores={e: dict(row) for e, row in result.scores.items()},
            missing=result.missing,
            timings=dict(result.timings),
            models={p: known[p] for p in sorted(participants) if p in known},
            aggregator=result.aggregator,
            requested=result.requested,
            joined=result.joined,
            **_answer_fields(result.answer),
        )


def _answer_fields(answer: Mapping[str, Any]) -> dict[str, Any]:
    """The winner's response fields (``ev.Result.answer``) that SwarmResult carries."""
    keys = ("tool_calls", "done_reason", "prompt_tokens", "eval_tokens", "prompt_ms", "eval_ms")
    out = {k: answer[k] for k in keys if k in answer}
    if "tool_calls" in out:
        out["tool_calls"] = tuple(out["tool_calls"])
    return out


async def start_gateway(
    runtime: ProviderDirectory,
    engine: SessionEngine | None,
    listen: str = DEFAULT_LISTEN,
    token: str | None = None,
    **options: Any,
) -> GatewayHandle:
    """Serve a started ``NodeRuntime`` as an Ollama/OpenAI endpoint (``rnet node --serve``).

    ``options`` are :class:`GatewayConfig` fields (providers, timeout_s, aggregator, ...).
    Call on the runtime's asyncio loop after ``runtime.start()``; ``await handle.close()``
    before ``runtime.aclose()``. Raises ValueError (bad address, public bind without token)
    or OSError (port in use).
    """
    config = GatewayConfig(token=token, **options)
    return await serve_swarm(RuntimeSwarm(runtime, engine), listen, config)
