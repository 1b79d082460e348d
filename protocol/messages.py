"""Message bodies: one frozen, slotted dataclass per kind, validated in its constructor.

A body that exists is valid: constructors check types, ranges and sizes and raise
:class:`~protocol.errors.ProtocolError` subclasses naming the field. ``to_wire()`` gives a plain
dict of msgpack-able values (str, bytes, int, float, None, list, dict); ``from_wire()`` is strict:
every field present, no unknown field, exact types (no bool for int, no int for str).

Peer IDs are raw ``bytes`` everywhere in bodies (see :mod:`protocol.identity`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeAlias

from protocol.errors import (
    MalformedError,
    OversizeError,
    ProtocolError,
    RangeError,
    UnknownKindError,
)
from protocol.generation import (
    GenOptions,
    check_capabilities,
    check_done_reason,
    check_format,
    check_tool_calls,
    check_tool_choice,
    check_tools,
)
from protocol.identity import is_peer_id

__all__ = [
    "AGGREGATORS",
    "BODY_TYPES",
    "KINDS",
    "MAX_NAME_CHARS",
    "MAX_PARTICIPANTS",
    "MAX_PROMPT_CHARS",
    "MAX_REASON_CHARS",
    "MAX_RESPONSE_CHARS",
    "MAX_SCORE",
    "MAX_STAGE_MS",
    "MESH_KINDS",
    "MESH_TOPIC",
    "MIN_SCORE",
    "Abort",
    "Advertise",
    "Assign",
    "Body",
    "Bootmesh",
    "Join",
    "Presence",
    "Response",
    "Result",
    "Score",
    "ScoreEntry",
    "Scores",
    "body_from_wire",
]

logger = logging.getLogger(__name__)

# --- limits (characters for text; counts for lists) -------------------------------------------
MAX_PROMPT_CHARS = 8_192
MAX_RESPONSE_CHARS = 16_384
MAX_REASON_CHARS = 512
MAX_NAME_CHARS = 128  # model, backend, node names
MAX_PARTICIPANTS = 64  # executors + verifiers of one session (the result matrix grows as n^2)
MAX_PARAMS = 16
MAX_ADDRS = 16
MAX_ADDR_CHARS = 256
MAX_MESH_TOPICS = 256
MAX_MESH_PEERS = 1_024
MAX_TOPIC_CHARS = 128
MAX_SLOTS = 256  # model slots one provider may announce
MAX_CERT_BYTES = 512  # a membership certificate (protocol.membership)
MAX_STAGE_MS = 3_600_000  # one hour: any longer is a typo, not a deadline
MAX_GEN_MS = 24 * 3_600_000

MIN_SCORE = 0.0
MAX_SCORE = 0.99

MESH_TOPIC = "swarm/mesh"
AGGREGATORS = ("mean", "median", "trimmed")
PRESENCE_ROLES = ("provider", "bootstrap")

# Session deadlines (durations, ms): the one definition, used by the node's SessionOptions too.
DEFAULT_JOIN_MS = 10_000
DEFAULT_EXEC_MS = 60_000
DEFAULT_VERIFY_MS = 60_000


# --- validators: each names the field it rejects ----------------------------------------------
def _type_error(name: str, expected: str, value: object) -> MalformedError:
    return MalformedError(
        f"expected {expected}, got {type(value).__name__}", field=name, reason="bad_type"
    )


def _text(name: str, value: object, max_chars: int, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise _type_error(name, "str", value)
    if len(value) > max_chars:
        raise OversizeError(f"{len(value)} chars > {max_chars}", field=name)
    if not empty and not value.strip():
        raise RangeError("must not be empty", field=name)
    return value


def _int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(name, "int", value)
    if not lo <= value <= hi:
        raise RangeError(f"{value} not in [{lo}, {hi}]", field=name)
    return value


def _score(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _type_error(name, "float", value)
    value = float(value)
    if math.isnan(value) or not MIN_SCORE <= value <= MAX_SCORE:
        raise RangeError(f"{value} not in [{MIN_SCORE:.2f}, {MAX_SCORE:.2f}]", field=name)
    return value


def _opt_score(name: str, value: object) -> float | None:
    return None if value is None else _score(name, value)


def _peer(name: str, value: object) -> bytes:
    if not isinstance(value, bytes):
        raise _type_error(name, "peer-id bytes", value)
    if not is_peer_id(value):
        raise RangeError("not an Ed25519 peer ID", field=name)
    return value


def _peers(name: str, value: object, max_items: int, *, empty: bool = False) -> tuple[bytes, ...]:
    if not isinstance(value, list | tuple):
        raise _type_error(name, "list", value)
    if len(value) > max_items:
        raise OversizeError(f"{len(value)} entries > {max_items}", field=name)
    out = tuple(_peer(f"{name}[{i}]", v) for i, v in enumerate(value))
    if len(set(out)) != len(out):
        raise RangeError("duplicate peer", field=name)
    if not empty and not out:
        raise RangeError("must not be empty", field=name)
    return out


def _map(name: str, value: object, max_items: int) -> dict[Any, Any]:
    if not isinstance(value, Mapping):
        raise _type_error(name, "map", value)
    if len(value) > max_items:
        raise OversizeError(f"{len(value)} entries > {max_items}", field=name)
    return dict(value)


def _set(obj: object, name: str, value: object) -> None:
    # frozen dataclasses normalise their own fields (list -> tuple, int -> float) in __post_init__
    object.__setattr__(obj, name, value)


def _wire_fields(cls: type, data: object) -> dict[str, Any]:
    """Strict field presence check shared by every ``from_wire``."""
    if not isinstance(data, Mapping):
        raise _type_error("body", "map", data)
    names = {f.name for f in fields(cls)}
    for key in data:
        if key not in names:
            raise MalformedError(f"unknown field {key!r}", field=str(key), reason="unknown_field")
    for name in (f.name for f in fields(cls)):  # declaration order: the first missing is named
        if name not in data:
            raise MalformedError("missing field", field=name, reason="missing_field")
    return dict(data)


class _Body:
    """Shared plumbing; subclasses are frozen slotted dataclasses with a ``KIND``."""

    __slots__ = ()
    KIND: ClassVar[str]

    def to_wire(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_wire(cls, data: object) -> Any:
        return cls(**_wire_fields(cls, data))


def _plain(value: Any) -> Any:
    """Dataclass field value -> msgpack-able (tuples become lists, nested bodies dicts)."""
    if isinstance(value, _Body | GenOptions):
        return value.to_wire()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


# --- bodies -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Advertise(_Body):
    """Leader -> ``swarm/mesh``: a session is open for joining.

    Deadlines are *durations* in ms: joining closes ``join_ms`` after the advertisement; responses
    are due ``exec_ms`` after the assignment; scores ``verify_ms`` after that. ``wanted`` is the
    number of participants the leader waits for (0: no target, manual ``ack``).

    Generation (see :mod:`protocol.generation`): ``options`` for the executors' model, ``format``
    (``None``, ``"json"`` or a JSON schema), ``tools`` offered and ``tool_choice`` (``"auto"``,
    ``"required"`` or a tool's name). The leader drops responses that do not fit them.
    """

    KIND: ClassVar[str] = "advertise"
    prompt: str
    wanted: int = 0
    join_ms: int = DEFAULT_JOIN_MS
    exec_ms: int = DEFAULT_EXEC_MS
    verify_ms: int = DEFAULT_VERIFY_MS
    aggregator: str = "mean"
    params: Mapping[str, str | int | float | bool | None] = field(default_factory=dict)
    # -- generation (issue 17) --
    options: GenOptions = field(default_factory=GenOptions)
    format: str | Mapping[str, Any] | None = None
    tools: tuple[Mapping[str, Any], ...] = ()
    tool_choice: str = "auto"

    def __post_init__(self) -> None:
        _set(self, "options", GenOptions.from_wire(self.options))
        _set(self, "format", check_format(self.format))
        _set(self, "tools", check_tools(self.tools))
        _set(self, "tool_choice", check_tool_choice(self.tool_choice, self.tools))
        _text("prompt", self.prompt, MAX_PROMPT_CHARS, empty=False)
        _int("wanted", self.wanted, 0, MAX_PARTICIPANTS)
        for name in ("join_ms", "exec_ms", "verify_ms"):
            _int(name, getattr(self, name), 1, MAX_STAGE_MS)
        if not isinstance(self.aggregator, str):
            raise _type_error("aggregator", "str", self.aggregator)
        if self.aggregator not in AGGREGATORS:
            raise RangeError(f"{self.aggregator!r} not one of {AGGREGATORS}", field="aggregator")
        params = _map("params", self.params, MAX_PARAMS)
        for key, value in params.items():
            _text("params.<key>", key, MAX_NAME_CHARS, empty=False)
            if isinstance(value, str):
                _text(f"params.{key}", value, MAX_NAME_CHARS)
            elif isinstance(value, float) and not math.isfinite(value):
                raise RangeError("not finite", field=f"params.{key}")
            elif value is not None and not isinstance(value, int | float | bool):
                raise _type_error(f"params.{key}", "scalar", value)
        _set(self, "params", params)


@dataclass(frozen=True, slots=True)
class Join(_Body):
    """Provider -> task topic: I take part, with this model on this backend (which can do
    ``capabilities``, see :data:`protocol.generation.CAPABILITIES`)."""

    KIND: ClassVar[str] = "join"
    model: str
    backend: str
    capabilities: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "capabilities", check_capabilities(self.capabilities))
        _text("model", self.model, MAX_NAME_CHARS, empty=False)
        _text("backend", self.backend, MAX_NAME_CHARS, empty=False)


@dataclass(frozen=True, slots=True)
class Assign(_Body):
    """Leader -> task topic: the role split (disjoint, at least one of each) and the prompt."""

    KIND: ClassVar[str] = "assign"
    executors: tuple[bytes, ...]
    verifiers: tuple[bytes, ...]
    prompt: str

    def __post_init__(self) -> None:
        ex = _peers("executors", self.executors, MAX_PARTICIPANTS)
        ve = _peers("verifiers", self.verifiers, MAX_PARTICIPANTS)
        if set(ex) & set(ve):
            raise RangeError("a peer cannot both execute and verify", field="verifiers")
        if len(ex) + len(ve) > MAX_PARTICIPANTS:
            raise OversizeError(f"more than {MAX_PARTICIPANTS} participants", field="verifiers")
        _text("prompt", self.prompt, MAX_PROMPT_CHARS, empty=False)
        _set(self, "executors", ex)
        _set(self, "verifiers", ve)


@dataclass(frozen=True, slots=True)
class Response(_Body):
    """Executor -> task topic: the generated text (and/or tool calls).

    ``done_reason`` is ``"length"`` when ``num_predict`` cut the text. Token counts and model
    times are the backend's own figures, ``0`` when it did not report them.
    """

    KIND: ClassVar[str] = "response"
    text: str
    model: str
    gen_ms: int = 0
    # -- generation (issue 17) --
    tool_calls: tuple[Mapping[str, Any], ...] = ()
    done_reason: str = "stop"
    prompt_tokens: int = 0
    eval_tokens: int = 0
    prompt_ms: int = 0
    eval_ms: int = 0

    def __post_init__(self) -> None:
        _set(self, "tool_calls", check_tool_calls(self.tool_calls))
        check_done_reason(self.done_reason)
        for name in ("prompt_tokens", "eval_tokens"):
            _int(name, getattr(self, name), 0, 10 * MAX_RESPONSE_CHARS)
        for name in ("prompt_ms", "eval_ms"):
            _int(name, getattr(self, name), 0, MAX_GEN_MS)
        _text("text", self.text, MAX_RESPONSE_CHARS)
        _text("model", self.model, MAX_NAME_CHARS, empty=False)
        _int("gen_ms", self.gen_ms, 0, MAX_GEN_MS)


@dataclass(frozen=True, slots=True)
class Score(_Body):
    """Verifier -> task topic: one judgement of one executor's response."""

    KIND: ClassVar[str] = "score"
    executor: bytes
    score: float
    reason: str = ""
    judge_model: str = "unknown"

    def __post_init__(self) -> None:
        _peer("executor", self.executor)
        _set(self, "score", _score("score", self.score))
        _text("reason", self.reason, MAX_REASON_CHARS)
        _text("judge_model", self.judge_model, MAX_NAME_CHARS, empty=False)


@dataclass(frozen=True, slots=True)
class ScoreEntry(_Body):
    """One line of a :class:`Scores` batch."""

    KIND: ClassVar[str] = "score_entry"
    executor: bytes
    score: float
    reason: str = ""

    def __post_init__(self) -> None:
        _peer("executor", self.executor)
        _set(self, "score", _score("score", self.score))
        _text("reason", self.reason, MAX_REASON_CHARS)


@dataclass(frozen=True, slots=True)
class Scores(_Body):
    """Verifier -> the session's leader topic: several judgements in one message (ARCHITECTURE
    §10 item 13), and the responses this verifier could not judge.

    Each entry obeys exactly the rules of a single :class:`Score`. ``failed`` names executors
    whose response the verifier's judge could not score (an error, a timeout, no usable
    number): those cells stay *missing* (never 0.00), but the leader need not wait for them
    until the verify deadline. At least one of ``entries`` and ``failed`` is non-empty, and no
    executor is in both.
    """

    KIND: ClassVar[str] = "scores"
    entries: tuple[ScoreEntry, ...]
    judge_model: str = "unknown"
    failed: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.entries, list | tuple):
            raise _type_error("entries", "list", self.entries)
        failed = _peers("failed", self.failed, MAX_PARTICIPANTS, empty=True)
        _set(self, "failed", failed)
        if not self.entries and not failed:
            raise RangeError("must not be empty (nor failed)", field="entries")
        if len(self.entries) > MAX_PARTICIPANTS:
            raise OversizeError(f"more than {MAX_PARTICIPANTS} entries", field="entries")
        entries = []
        for i, entry in enumerate(self.entries):
            if isinstance(entry, ScoreEntry):
                entries.append(entry)
                continue
            try:
                entries.append(ScoreEntry.from_wire(entry))
            except ProtocolError as exc:
                exc.field = f"entries[{i}].{exc.field}" if exc.field else f"entries[{i}]"
                raise
        if len({e.executor for e in entries}) != len(entries):
            raise RangeError("duplicate executor", field="entries")
        if {e.executor for e in entries} & set(failed):
            raise RangeError("an executor both scored and failed", field="failed")
        _text("judge_model", self.judge_model, MAX_NAME_CHARS, empty=False)
        _set(self, "entries", tuple(entries))


@dataclass(frozen=True, slots=True)
class Result(_Body):
    """Leader -> task topic: the tally.

    ``scores[executor][verifier]`` is the full matrix over *assigned* executors and verifiers;
    ``None`` means the score never arrived (missing, never 0.00). ``averages[executor]`` is
    ``None`` for an executor with no score; ``counts[executor]`` is the number of scores used.
    ``missing`` lists assigned peers that delivered nothing (executors without a response,
    verifiers without a single score). ``winner``/``score``/``text`` are ``None``/``None``/""
    when no executor could be ranked.
    """

    KIND: ClassVar[str] = "result"
    winner: bytes | None
    score: float | None
    text: str
    aggregator: str
    averages: Mapping[bytes, float | None]
    counts: Mapping[bytes, int]
    scores: Mapping[bytes, Mapping[bytes, float | None]]
    missing: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if self.aggregator not in AGGREGATORS:
            raise RangeError(f"{self.aggregator!r} not one of {AGGREGATORS}", field="aggregator")
        _text("text", self.text, MAX_RESPONSE_CHARS)
        averages = _map("averages", self.averages, MAX_PARTICIPANTS)
        counts = _map("counts", self.counts, MAX_PARTICIPANTS)
        matrix = _map("scores", self.scores, MAX_PARTICIPANTS)
        for ex in averages:
            _peer("averages.<key>", ex)
            averages[ex] = _opt_score("averages", averages[ex])
        for ex in counts:
            _peer("counts.<key>", ex)
            _int("counts", counts[ex], 0, MAX_PARTICIPANTS)
        verifier_set: set[bytes] | None = None
        for ex, row in list(matrix.items()):
            _peer("scores.<key>", ex)
            row = _map("scores.<row>", row, MAX_PARTICIPANTS)
            for ver, value in row.items():
                _peer("scores.<verifier>", ver)
                if ver == ex:
                    raise RangeError("an executor cannot score itself", field="scores")
                row[ver] = _opt_score("scores.<value>", value)
            if verifier_set is None:
                verifier_set = set(row)
            elif set(row) != verifier_set:
                raise RangeError("every row must name the same verifiers", field="scores")
            matrix[ex] = row
        if not (set(averages) == set(counts) == set(matrix)):
            raise RangeError(
                "averages, counts and scores must name the same executors", field="averages"
            )
        if len(matrix) + len(verifier_set or ()) > MAX_PARTICIPANTS:
            raise OversizeError(f"more than {MAX_PARTICIPANTS} participants", field="scores")
        for ex, row in matrix.items():
            given = sum(1 for v in row.values() if v is not None)
            if counts[ex] != given:
                raise RangeError(f"count {counts[ex]} but {given} scores", field="counts")
            if (averages[ex] is None) != (given == 0):
                raise RangeError(
                    "an average needs scores and scores need an average", field="averages"
                )
        missing = _peers("missing", self.missing, MAX_PARTICIPANTS, empty=True)
        if not set(missing) <= set(matrix) | (verifier_set or set()):
            raise RangeError("missing names a peer without a role", field="missing")
        if self.winner is None:
            if self.score is not None:
                raise RangeError("a score without a winner", field="score")
        else:
            _peer("winner", self.winner)
            if self.winner not in averages:
                raise RangeError("the winner is not an executor", field="winner")
            _set(self, "score", _score("score", self.score))
            if averages[self.winner] is None:
                raise RangeError("the winner has no scores", field="winner")
        _set(self, "averages", averages)
        _set(self, "counts", counts)
        _set(self, "scores", matrix)
        _set(self, "missing", missing)

    @property
    def executors(self) -> tuple[bytes, ...]:
        return tuple(self.scores)

    @property
    def verifiers(self) -> tuple[bytes, ...]:
        for row in self.scores.values():
            return tuple(row)
        return ()


@dataclass(frozen=True, slots=True)
class Abort(_Body):
    """Leader -> task topic: the session ends without a result."""

    KIND: ClassVar[str] = "abort"
    reason: str

    def __post_init__(self) -> None:
        _text("reason", self.reason, MAX_REASON_CHARS, empty=False)


@dataclass(frozen=True, slots=True)
class Presence(_Body):
    """Any node -> ``swarm/mesh``: who I am and what I run. ``status`` is empty while the node
    can take executor and verifier roles, else why it cannot (its model does not answer): it
    still relays and leads."""

    KIND: ClassVar[str] = "presence"
    name: str
    role: str = "provider"
    model: str = ""
    backend: str = ""
    addrs: tuple[str, ...] = ()
    status: str = ""
    # model slots offered and in use (protocol/capacity.py); 0/0 on nodes that run no model
    slots: int = 0
    slots_used: int = 0
    capabilities: tuple[str, ...] = ()  # issue 17: what the backend can do (tools, json)
    # a membership certificate from the bootstrap (protocol.membership), b"" in an open swarm
    cert: bytes = b""

    def to_wire(self) -> dict[str, Any]:
        # without a certificate the wire form is the one nodes before closed swarms send
        wire = _Body.to_wire(self)
        if not self.cert:
            del wire["cert"]
        return wire

    @classmethod
    def from_wire(cls, data: object) -> Any:
        if isinstance(data, Mapping) and "cert" not in data:
            data = {**data, "cert": b""}
        return cls(**_wire_fields(cls, data))

    def __post_init__(self) -> None:
        _set(self, "capabilities", check_capabilities(self.capabilities))
        if not isinstance(self.cert, bytes):
            raise _type_error("cert", "bytes", self.cert)
        if len(self.cert) > MAX_CERT_BYTES:
            raise OversizeError(f"{len(self.cert)} bytes > {MAX_CERT_BYTES}", field="cert")
        _text("name", self.name, MAX_NAME_CHARS)
        for name in ("slots", "slots_used"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise _type_error(name, "int", value)
            if not 0 <= value <= MAX_SLOTS:
                raise RangeError(f"{value} not within 0..{MAX_SLOTS}", field=name)
        if self.role not in PRESENCE_ROLES:
            raise RangeError(f"{self.role!r} not one of {PRESENCE_ROLES}", field="role")
        _text("model", self.model, MAX_NAME_CHARS)
        _text("backend", self.backend, MAX_NAME_CHARS)
        _text("status", self.status, MAX_NAME_CHARS)
        if not isinstance(self.addrs, list | tuple):
            raise _type_error("addrs", "list", self.addrs)
        if len(self.addrs) > MAX_ADDRS:
            raise OversizeError(f"more than {MAX_ADDRS} addresses", field="addrs")
        _set(
            self,
            "addrs",
            tuple(_text(f"addrs[{i}]", a, MAX_ADDR_CHARS) for i, a in enumerate(self.addrs)),
        )


@dataclass(frozen=True, slots=True)
class Bootmesh(_Body):
    """Bootstrap -> ``swarm/mesh``: its view of topic -> subscribed peers."""

    KIND: ClassVar[str] = "bootmesh"
    topics: Mapping[str, tuple[bytes, ...]]

    def __post_init__(self) -> None:
        topics = _map("topics", self.topics, MAX_MESH_TOPICS)
        for topic in list(topics):
            _text("topics.<key>", topic, MAX_TOPIC_CHARS, empty=False)
            topics[topic] = _peers(f"topics.{topic}", topics[topic], MAX_MESH_PEERS, empty=True)
        _set(self, "topics", topics)


Body: TypeAlias = (
    Advertise | Join | Assign | Response | Score | Scores | Result | Abort | Presence | Bootmesh
)

BODY_TYPES: dict[str, type[Any]] = {
    cls.KIND: cls
    for cls in (Advertise, Join, Assign, Response, Score, Scores, Result, Abort, Presence, Bootmesh)
}
KINDS: tuple[str, ...] = tuple(BODY_TYPES)
# kinds published on MESH_TOPIC; every other kind goes to the session's own topic (its task id)
MESH_KINDS = frozenset({"advertise", "presence", "bootmesh"})
# kinds only the leader needs: published on the session's leader topic (``<task>/lead``), which
# only the leader subscribes to, so the hub forwards each to one peer instead of to everyone
LEADER_KINDS = frozenset({"join", "score", "scores"})
LEADER_TOPIC_SUFFIX = "/lead"  # task ids cannot contain "/": no clash with a task topic


def body_from_wire(kind: str, data: object) -> Body:
    """Decode a body map for ``kind``; raises :class:`ProtocolError` only."""
    cls = BODY_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise UnknownKindError(f"unknown kind {kind!r}", field="kind")
    return cls.from_wire(data)
