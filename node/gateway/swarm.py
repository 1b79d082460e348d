"""What the gateway needs from the node: run one swarm session as leader (``SwarmSessions``).

The narrow interface the HTTP side is written and tested against; ``adapter.RuntimeSwarm``
implements it over the real sessions engine, ``tests/gateway/fake.FakeSwarm`` in memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from protocol.generation import GenOptions
from protocol.tally import DEFAULT_AGGREGATOR

# Stages in which the leader has its participants (roles assigned): a streamed reply may commit
# its headers then. Before (advertise) and after (done, aborted) it waits for the outcome.
ASSIGNED_STAGES = frozenset({"execute", "verify", "finalize"})


@dataclass(frozen=True, slots=True)
class SwarmResult:
    """The outcome of one swarm session, as the gateway reports it.

    Peer ids are base58 strings. ``score`` is the winner's aggregated score; ``averages`` maps
    executor -> aggregated score; ``scores`` executor -> verifier -> score (None = missing);
    ``missing`` says what did not arrive; ``timings`` stage -> milliseconds; ``models`` peer ->
    model name of every participant that reported one.
    """

    task: str
    winner: str
    score: float
    text: str
    averages: Mapping[str, float] = field(default_factory=dict)
    scores: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)
    missing: Any = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)
    models: Mapping[str, str] = field(default_factory=dict)
    aggregator: str = DEFAULT_AGGREGATOR
    requested: int = 0  # providers asked for, and how many joined (issue 14)
    joined: int = 0

    # The winner's response beyond its text (see protocol.messages.Response): tool calls,
    # "stop"/"length", and its backend's token counts and model times (0 = not reported).
    tool_calls: tuple[Mapping[str, Any], ...] = ()
    done_reason: str = "stop"
    prompt_tokens: int = 0
    eval_tokens: int = 0
    prompt_ms: int = 0
    eval_ms: int = 0

    def metadata(self) -> dict[str, Any]:
        """The session's metadata as the extra ``swarm`` field of a reply (JSON-able)."""
        data = asdict(self)
        for shown_elsewhere in ("text", "tool_calls", "done_reason"):
            data.pop(shown_elsewhere)
        return json.loads(json.dumps(data, default=str))


@dataclass(frozen=True, slots=True)
class Generation:
    """What a request asks of the executors beyond the prompt (the advertisement's generation
    fields, :mod:`protocol.generation`), already validated by the protocol's constructors."""

    options: GenOptions = field(default_factory=GenOptions)
    format: str | Mapping[str, Any] | None = None
    tools: tuple[Mapping[str, Any], ...] = ()
    tool_choice: str = "auto"

    def advertise_fields(self) -> dict[str, Any]:
        """Keyword arguments for ``protocol.messages.Advertise``."""
        return {
            "options": self.options,
            "format": self.format,
            "tools": self.tools,
            "tool_choice": self.tool_choice,
        }


class SwarmUnavailable(Exception):
    """The swarm could not answer: not enough providers, deadline passed, empty result.

    ``reason`` is the human sentence sent to the client; ``code`` a short machine word
    (``not_enough_providers`` | ``deadline`` | ``empty_result`` | ``invalid_output`` |
    ``unavailable``).
    """

    def __init__(self, reason: str, code: str = "unavailable") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


StageCallback = Callable[[str], None]


@runtime_checkable
class SwarmSessions(Protocol):
    """What the gateway needs from the node: run one session as leader, and the models seen."""

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
        """Run one session to its result; raise :class:`SwarmUnavailable` when there is none."""
        ...

    def provider_models(self) -> Mapping[str, str]:
        """peer id (base58) -> model name, for every provider seen in presence."""
        ...


# Optional on a SwarmSessions: ``join_window_s(timeout_s) -> float``, how long a session of that
# timeout waits for joins. Streamed replies hold their headers that long (see ``answer``).
# ``capabilities() -> set[str]``: what the providers seen in presence can do (``tools``,
# ``json``); without it the gateway does not refuse tools or formats up front.
