"""Events the runtime emits: what the console shows and what ``--no-ui --json`` prints.

Every event is a frozen dataclass with a class attribute ``event`` (its type name on the wire)
and ``to_dict()`` giving a JSON-able dict that includes ``"event"``. Events are snapshots: they
never hold references to libp2p's live structures, so a consumer may keep them. Peer ids are
base58 strings here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Event:
    """Base class: subclasses set ``event``."""

    event: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.event}
        for f in dataclasses.fields(self):
            out[f.name] = _jsonable(getattr(self, f.name))
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """The event back from its ``to_dict()`` form (unknown keys ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, bytes):
        return value.hex()
    return value


@dataclass(frozen=True, slots=True)
class Ready(Event):
    """The node is listening, and (providers) connected to the bootstrap and subscribed."""

    event: ClassVar[str] = "ready"
    peer_id: str
    addrs: list[str]
    role: str  # "bootstrap" | "provider"
    name: str
    elapsed_ms: float | None = None  # from process start, for the curious


@dataclass(frozen=True, slots=True)
class PeerJoined(Event):
    event: ClassVar[str] = "peer_joined"
    peer_id: str
    addr: str = ""


@dataclass(frozen=True, slots=True)
class PeerLeft(Event):
    event: ClassVar[str] = "peer_left"
    peer_id: str


@dataclass(frozen=True, slots=True)
class PeerInfo(Event):
    """What we know about one peer: its model (from its presence) and the last ping RTT."""

    event: ClassVar[str] = "peer_info"
    peer_id: str
    model: str = ""
    backend: str = ""
    rtt_ms: float | None = None
    state: str = "connected"  # "connected" | "lost"
    name: str = ""
    status: str = ""  # why the peer takes no session role now ("" = it can)
    slots: int = 0  # model slots it offers (0: none announced) and how many are in use
    slots_used: int = 0


@dataclass(frozen=True, slots=True)
class Mesh(Event):
    """This node's local view: topic -> peers subscribed to it (base58 ids)."""

    event: ClassVar[str] = "mesh"
    topics: dict[str, list[str]]


@dataclass(frozen=True, slots=True)
class Bootmesh(Event):
    """The bootstrap's view of the swarm: topic -> peers, as last published by it."""

    event: ClassVar[str] = "bootmesh"
    topics: dict[str, list[str]]


@dataclass(frozen=True, slots=True)
class Message(Event):
    """A message received on a topic (plain text, or a decoded envelope summary)."""

    event: ClassVar[str] = "message"
    topic: str
    sender: str
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class CommandOutput(Event):
    event: ClassVar[str] = "command_output"
    command: str
    text: str
    ok: bool


@dataclass(frozen=True, slots=True)
class Error(Event):
    event: ClassVar[str] = "error"
    message: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class Rejected(Event):
    """A received message failed validation (bad signature, garbage, replay...); counted."""

    event: ClassVar[str] = "rejected"
    reason: str
    sender: str
    topic: str
    detail: str = ""
    count: int = 0  # total rejected so far on this node
    # a summary line: this many more from the sender in the interval, per reason (rejects.py)
    repeats: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Log(Event):
    event: ClassVar[str] = "log"
    level: str
    logger: str
    message: str


@dataclass(frozen=True, slots=True)
class SlmChunk(Event):
    event: ClassVar[str] = "slm_chunk"
    text: str
    done: bool


@dataclass(frozen=True, slots=True)
class Missing:
    """What did not arrive in a session (base58 ids): executors without a response, verifiers
    without any score, and per responding executor the verifiers whose score is not in. Until
    the session ends an empty score cell is pending; once it ended it is missing (never 0.00)."""

    executors: list[str] = field(default_factory=list)
    verifiers: list[str] = field(default_factory=list)
    scores: dict[str, list[str]] = field(default_factory=dict)  # executor -> verifiers
    # executor -> why the leader dropped its answer (wrong format, bad tool call; issue 17)
    invalid: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Missing:
        return cls(
            executors=[str(p) for p in data.get("executors", ())],
            verifiers=[str(p) for p in data.get("verifiers", ())],
            scores={str(e): [str(v) for v in vs] for e, vs in data.get("scores", {}).items()},
            invalid={str(e): str(why) for e, why in data.get("invalid", {}).items()},
        )


@dataclass(frozen=True, slots=True)
class Session(Event):
    """A full snapshot of one session, emitted on every change (``node.sessions.views`` builds
    it from ``protocol.session.SessionSnapshot.to_dict()``). ``stage_deadline_ms`` is wall-clock
    epoch ms (the engine's clock is monotonic; it converts here, where the time is shown)."""

    event: ClassVar[str] = "session"
    task: str
    leader: str
    role: str
    stage: str
    stage_deadline_ms: int | None = None
    prompt: str = ""
    joined: list[str] = field(default_factory=list)
    executors: list[str] = field(default_factory=list)
    verifiers: list[str] = field(default_factory=list)
    responses: dict[str, str | None] = field(default_factory=dict)
    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)
    missing: Missing = field(default_factory=Missing)
    averages: dict[str, float | None] = field(default_factory=dict)
    winner: str | None = None
    counts: dict[str, int] = field(default_factory=dict)  # joined, responses(_expected)...

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Session:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in data.items() if k in names}
        kw["missing"] = Missing.from_dict(data.get("missing") or {})
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class Result(Event):
    """How a session ended: the winner (``None`` when nothing could be ranked), the tally, what
    was missing, and the stage durations in ms."""

    event: ClassVar[str] = "result"
    task: str
    leader: str
    winner: str | None
    score: float | None
    text: str
    averages: dict[str, float | None] = field(default_factory=dict)
    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)
    missing: Missing = field(default_factory=Missing)
    aggregator: str = "mean"
    timings: dict[str, float] = field(default_factory=dict)
    reason: str = ""  # why it ended without a result ("" when it has one)
    requested: int = 0  # providers the leader asked for (pipe N); 0: not fixed (adv/ack)
    joined: int = 0  # providers that joined
    # The winner's response beyond its text (issue 17): tool_calls, done_reason, model, token
    # counts and model times as its backend reported them (0: not reported).
    answer: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Result:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in data.items() if k in names}
        kw["missing"] = Missing.from_dict(data.get("missing") or {})
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class Reputation(Event):
    """A finished session counted in this node's reputation book (``node.reputation``): the
    reputation (0..1) of the peers it changed, by base58 peer ID."""

    event: ClassVar[str] = "reputation"
    peers: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GatewayQueue(Event):
    """This node's gateway: sessions running, requests waiting for a turn, sessions at once."""

    event: ClassVar[str] = "gateway_queue"
    running: int
    waiting: int
    capacity: int


EVENT_TYPES: dict[str, type[Event]] = {
    cls.event: cls
    for cls in (
        Ready,
        PeerJoined,
        PeerLeft,
        PeerInfo,
        Mesh,
        Bootmesh,
        Message,
        CommandOutput,
        Error,
        Rejected,
        Log,
        SlmChunk,
        Session,
        Result,
        Reputation,
        GatewayQueue,
    )
}


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """Rebuild an event from ``to_dict()`` output (unknown keys ignored); for tests and tools.
    KeyError for an unknown event type, TypeError for a missing field."""
    return EVENT_TYPES[data["event"]].from_dict(data)
