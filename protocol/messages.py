"""Message bodies: one frozen, slotted dataclass per kind, validated in its constructor.

A body that exists is valid: constructors check types, ranges and sizes and raise
:class:`~protocol.errors.ProtocolError` subclasses naming the field. ``to_wire()`` gives a plain
dict of msgpack-able values (str, bytes, int, float, None, list, dict); ``from_wire()`` is strict:
every field present, no unknown field, exact types (no bool for int, no int for str).

Peer IDs are raw ``bytes`` everywhere in bodies (see :mod:`protocol.identity`). Limits and
validators live in :mod:`protocol.wire`; the ``result`` body in :mod:`protocol.result`.

Blind judging (protocol v2): executors send ``response`` to the leader only; the leader forwards
each as an ``item`` under a per-session label (``A``, ``B``, ...) to the verifiers, who score
labels, never peers. ``reveal`` republishes, at finalize, the signed envelopes the result
counted, so every participant holds what it needs to re-tally.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias

from protocol.errors import OversizeError, ProtocolError, RangeError, UnknownKindError
from protocol.generation import (
    GenOptions,
    check_capabilities,
    check_done_reason,
    check_format,
    check_tool_calls,
    check_tool_choice,
    check_tools,
)
from protocol.mesh import Bootmesh, Presence
from protocol.result import Result
from protocol.wire import (
    AGGREGATORS,
    DEFAULT_EXEC_MS,
    DEFAULT_JOIN_MS,
    DEFAULT_VERIFY_MS,
    DIGEST_BYTES,
    MAX_CERT_BYTES,
    MAX_ENVELOPE_BYTES,
    MAX_GEN_MS,
    MAX_ITEMS,
    MAX_NAME_CHARS,
    MAX_PARAMS,
    MAX_PARTICIPANTS,
    MAX_PROMPT_CHARS,
    MAX_REASON_CHARS,
    MAX_RESPONSE_CHARS,
    MAX_SCORE,
    MAX_SLOTS,
    MAX_STAGE_MS,
    MESH_TOPIC,
    MIN_SCORE,
    BodyBase,
    check_digest,
    check_int,
    check_label,
    check_map,
    check_peers,
    check_score,
    check_text,
    set_field,
    type_error,
)

__all__ = [
    "AGGREGATORS",
    "BODY_TYPES",
    "DEFAULT_EXEC_MS",
    "DEFAULT_JOIN_MS",
    "DEFAULT_VERIFY_MS",
    "DIGEST_BYTES",
    "JUDGE_KINDS",
    "JUDGE_TOPIC_SUFFIX",
    "KINDS",
    "LEADER_KINDS",
    "LEADER_TOPIC_SUFFIX",
    "MAX_CERT_BYTES",
    "MAX_ITEMS",
    "MAX_NAME_CHARS",
    "MAX_PARTICIPANTS",
    "MAX_PROMPT_CHARS",
    "MAX_REASON_CHARS",
    "MAX_RESPONSE_CHARS",
    "MAX_SCORE",
    "MAX_SLOTS",
    "MAX_STAGE_MS",
    "MESH_KINDS",
    "MESH_TOPIC",
    "MIN_SCORE",
    "Abort",
    "Advertise",
    "Assign",
    "Body",
    "Bootmesh",
    "Item",
    "Join",
    "Presence",
    "Response",
    "Result",
    "Reveal",
    "Score",
    "ScoreEntry",
    "Scores",
    "body_from_wire",
]

logger = logging.getLogger(__name__)

# A reveal part carries raw envelopes up to this many bytes, so with its own framing it stays
# under MAX_ENVELOPE_BYTES (one response envelope is at most ~70 KB: 16 Ki chars of UTF-8).
MAX_REVEAL_BYTES = MAX_ENVELOPE_BYTES - 16 * 1024
MAX_REVEAL_PARTS = 64


# --- bodies -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Advertise(BodyBase):
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
        set_field(self, "options", GenOptions.from_wire(self.options))
        set_field(self, "format", check_format(self.format))
        set_field(self, "tools", check_tools(self.tools))
        set_field(self, "tool_choice", check_tool_choice(self.tool_choice, self.tools))
        check_text("prompt", self.prompt, MAX_PROMPT_CHARS, empty=False)
        check_int("wanted", self.wanted, 0, MAX_PARTICIPANTS)
        for name in ("join_ms", "exec_ms", "verify_ms"):
            check_int(name, getattr(self, name), 1, MAX_STAGE_MS)
        if not isinstance(self.aggregator, str):
            raise type_error("aggregator", "str", self.aggregator)
        if self.aggregator not in AGGREGATORS:
            raise RangeError(f"{self.aggregator!r} not one of {AGGREGATORS}", field="aggregator")
        params = check_map("params", self.params, MAX_PARAMS)
        for key, value in params.items():
            check_text("params.<key>", key, MAX_NAME_CHARS, empty=False)
            if isinstance(value, str):
                check_text(f"params.{key}", value, MAX_NAME_CHARS)
            elif isinstance(value, float) and not math.isfinite(value):
                raise RangeError("not finite", field=f"params.{key}")
            elif value is not None and not isinstance(value, int | float | bool):
                raise type_error(f"params.{key}", "scalar", value)
        set_field(self, "params", params)


@dataclass(frozen=True, slots=True)
class Join(BodyBase):
    """Provider -> task topic: I take part, with this model on this backend (which can do
    ``capabilities``, see :data:`protocol.generation.CAPABILITIES`)."""

    KIND: ClassVar[str] = "join"
    model: str
    backend: str
    capabilities: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        set_field(self, "capabilities", check_capabilities(self.capabilities))
        check_text("model", self.model, MAX_NAME_CHARS, empty=False)
        check_text("backend", self.backend, MAX_NAME_CHARS, empty=False)


@dataclass(frozen=True, slots=True)
class Assign(BodyBase):
    """Leader -> task topic: the role split (disjoint, at least one of each) and the prompt."""

    KIND: ClassVar[str] = "assign"
    executors: tuple[bytes, ...]
    verifiers: tuple[bytes, ...]
    prompt: str

    def __post_init__(self) -> None:
        ex = check_peers("executors", self.executors, MAX_PARTICIPANTS)
        ve = check_peers("verifiers", self.verifiers, MAX_PARTICIPANTS)
        if set(ex) & set(ve):
            raise RangeError("a peer cannot both execute and verify", field="verifiers")
        if len(ex) + len(ve) > MAX_PARTICIPANTS:
            raise OversizeError(f"more than {MAX_PARTICIPANTS} participants", field="verifiers")
        check_text("prompt", self.prompt, MAX_PROMPT_CHARS, empty=False)
        set_field(self, "executors", ex)
        set_field(self, "verifiers", ve)


@dataclass(frozen=True, slots=True)
class Response(BodyBase):
    """Executor -> the session's leader topic (blind judging): the generated text (and/or tool
    calls).

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
        set_field(self, "tool_calls", check_tool_calls(self.tool_calls))
        check_done_reason(self.done_reason)
        for name in ("prompt_tokens", "eval_tokens"):
            check_int(name, getattr(self, name), 0, 10 * MAX_RESPONSE_CHARS)
        for name in ("prompt_ms", "eval_ms"):
            check_int(name, getattr(self, name), 0, MAX_GEN_MS)
        check_text("text", self.text, MAX_RESPONSE_CHARS)
        check_text("model", self.model, MAX_NAME_CHARS, empty=False)
        check_int("gen_ms", self.gen_ms, 0, MAX_GEN_MS)


@dataclass(frozen=True, slots=True)
class Score(BodyBase):
    """Verifier -> leader topic: one judgement of the item under ``label`` (blind: a label,
    never an executor)."""

    KIND: ClassVar[str] = "score"
    label: str
    score: float
    reason: str = ""
    judge_model: str = "unknown"

    def __post_init__(self) -> None:
        check_label("label", self.label)
        set_field(self, "score", check_score("score", self.score))
        check_text("reason", self.reason, MAX_REASON_CHARS)
        check_text("judge_model", self.judge_model, MAX_NAME_CHARS, empty=False)


@dataclass(frozen=True, slots=True)
class ScoreEntry(BodyBase):
    """One line of a :class:`Scores` batch."""

    KIND: ClassVar[str] = "score_entry"
    label: str
    score: float
    reason: str = ""

    def __post_init__(self) -> None:
        check_label("label", self.label)
        set_field(self, "score", check_score("score", self.score))
        check_text("reason", self.reason, MAX_REASON_CHARS)


@dataclass(frozen=True, slots=True)
class Scores(BodyBase):
    """Verifier -> the session's leader topic: several judgements in one message (ARCHITECTURE
    §10 item 13), and the items this verifier could not judge.

    Each entry obeys exactly the rules of a single :class:`Score`. ``failed`` names labels
    whose text the verifier's judge could not score (an error, a timeout, no usable number):
    those cells stay *missing* (never 0.00), but the leader need not wait for them until the
    verify deadline. At least one of ``entries`` and ``failed`` is non-empty, and no label is in
    both.
    """

    KIND: ClassVar[str] = "scores"
    entries: tuple[ScoreEntry, ...]
    judge_model: str = "unknown"
    failed: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.entries, list | tuple):
            raise type_error("entries", "list", self.entries)
        if not isinstance(self.failed, list | tuple):
            raise type_error("failed", "list", self.failed)
        if len(self.entries) > MAX_ITEMS or len(self.failed) > MAX_ITEMS:
            raise OversizeError(f"more than {MAX_ITEMS} labels", field="entries")
        failed = tuple(check_label(f"failed[{i}]", x) for i, x in enumerate(self.failed))
        if len(set(failed)) != len(failed):
            raise RangeError("duplicate label", field="failed")
        set_field(self, "failed", failed)
        if not self.entries and not failed:
            raise RangeError("must not be empty (nor failed)", field="entries")
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
        if len({e.label for e in entries}) != len(entries):
            raise RangeError("duplicate label", field="entries")
        if {e.label for e in entries} & set(failed):
            raise RangeError("a label both scored and failed", field="failed")
        check_text("judge_model", self.judge_model, MAX_NAME_CHARS, empty=False)
        set_field(self, "entries", tuple(entries))


@dataclass(frozen=True, slots=True)
class Item(BodyBase):
    """Leader -> the session's judge topic: one text to judge, blind.

    ``label`` is the per-session label of the executor (or of a canary), fixed by a random
    permutation at assignment, so neither the label nor the order of items reveals who wrote it
    or when it arrived. ``response`` is the statement digest of the executor's signed response
    (:func:`protocol.envelope.statement_digest`): once the result reveals that envelope, a
    verifier checks the leader forwarded the text unaltered. ``total`` is how many items this
    session will have (so a verifier knows when it has them all).
    """

    KIND: ClassVar[str] = "item"
    label: str
    text: str
    response: bytes
    total: int

    def __post_init__(self) -> None:
        check_label("label", self.label)
        check_text("text", self.text, MAX_RESPONSE_CHARS)
        check_digest("response", self.response)
        check_int("total", self.total, 1, MAX_ITEMS)


@dataclass(frozen=True, slots=True)
class Reveal(BodyBase):
    """Leader -> task topic, at finalize, before the result: the signed envelopes the result
    counted that participants may lack (every response, every score batch, raw bytes exactly as
    received) and the canary items in full. Split in ``parts`` when large (``part`` counts
    from 0). The envelopes keep their own signatures: the leader's only vouches for the carrier.
    """

    KIND: ClassVar[str] = "reveal"
    part: int
    parts: int
    envelopes: tuple[bytes, ...]
    canaries: tuple[Item, ...] = ()

    def __post_init__(self) -> None:
        check_int("parts", self.parts, 1, MAX_REVEAL_PARTS)
        check_int("part", self.part, 0, self.parts - 1)
        if not isinstance(self.envelopes, list | tuple):
            raise type_error("envelopes", "list", self.envelopes)
        if len(self.envelopes) > 2 * MAX_ITEMS:
            raise OversizeError(f"more than {2 * MAX_ITEMS} envelopes", field="envelopes")
        size = 0
        for i, raw in enumerate(self.envelopes):
            if not isinstance(raw, bytes):
                raise type_error(f"envelopes[{i}]", "bytes", raw)
            size += len(raw)
        if size > MAX_REVEAL_BYTES:
            raise OversizeError(f"{size} bytes > {MAX_REVEAL_BYTES}", field="envelopes")
        if not isinstance(self.canaries, list | tuple):
            raise type_error("canaries", "list", self.canaries)
        if len(self.canaries) > MAX_ITEMS:
            raise OversizeError(f"more than {MAX_ITEMS} canaries", field="canaries")
        canaries = []
        for i, item in enumerate(self.canaries):
            if not isinstance(item, Item):
                try:
                    item = Item.from_wire(item)
                except ProtocolError as exc:
                    exc.field = f"canaries[{i}].{exc.field}" if exc.field else f"canaries[{i}]"
                    raise
            canaries.append(item)
        set_field(self, "envelopes", tuple(self.envelopes))
        set_field(self, "canaries", tuple(canaries))


@dataclass(frozen=True, slots=True)
class Abort(BodyBase):
    """Leader -> task topic: the session ends without a result."""

    KIND: ClassVar[str] = "abort"
    reason: str

    def __post_init__(self) -> None:
        check_text("reason", self.reason, MAX_REASON_CHARS, empty=False)


Body: TypeAlias = (
    Advertise
    | Join
    | Assign
    | Response
    | Item
    | Score
    | Scores
    | Reveal
    | Result
    | Abort
    | Presence
    | Bootmesh
)

BODY_TYPES: dict[str, type[Any]] = {
    cls.KIND: cls
    for cls in (
        Advertise,
        Join,
        Assign,
        Response,
        Item,
        Score,
        Scores,
        Reveal,
        Result,
        Abort,
        Presence,
        Bootmesh,
    )
}
KINDS: tuple[str, ...] = tuple(BODY_TYPES)
# kinds published on MESH_TOPIC; every other kind goes to the session's own topic (its task id)
MESH_KINDS = frozenset({"advertise", "presence", "bootmesh"})
# kinds only the leader needs: published on the session's leader topic (``<task>/lead``), which
# only the leader subscribes to, so the hub forwards each to one peer instead of to everyone.
# Responses go there too: blind judging (no executor sees another's answer).
LEADER_KINDS = frozenset({"join", "response", "score", "scores"})
LEADER_TOPIC_SUFFIX = "/lead"  # task ids cannot contain "/": no clash with a task topic
# kinds for the verifiers: the session's judge topic (``<task>/judge``), which joiners subscribe
# to and executors leave once assigned
JUDGE_KINDS = frozenset({"item"})
JUDGE_TOPIC_SUFFIX = "/judge"


def body_from_wire(kind: str, data: object) -> Body:
    """Decode a body map for ``kind``; raises :class:`ProtocolError` only."""
    cls = BODY_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise UnknownKindError(f"unknown kind {kind!r}", field="kind")
    return cls.from_wire(data)
