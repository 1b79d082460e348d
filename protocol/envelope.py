"""The signed envelope every application message travels in.

Wire form: one msgpack map ``{v, kind, task, from, seq, ts, body, sig}`` in *canonical* encoding
(map keys sorted, shortest ints, float64, str/bin distinguished). ``sig`` is Ed25519 by ``from``
over ``SIGNING_CONTEXT + canonical(map without sig)``; the public key comes from the ``from`` peer
ID itself, so nothing else is needed to verify. Receivers also require the bytes they got to be
canonical, so there is exactly one byte string per signed message (a re-encoded copy, e.g. an
int16 where a uint16 was sent, is rejected rather than silently accepted).

``open_envelope`` checks, in order: size, msgpack, shape and types, version, kind, task, sender
shape, canonical form, expected sender, signature, then the body's own validation. Every
failure is a :class:`~protocol.errors.ProtocolError`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import msgpack

from protocol.errors import (
    IdentityError,
    MalformedError,
    OversizeError,
    ProtocolError,
    RangeError,
    ReplayError,
    SenderMismatchError,
    SignatureError,
    UnknownKindError,
    VersionError,
)
from protocol.identity import Signer, is_peer_id, short_id, verify
from protocol.messages import (
    JUDGE_KINDS,
    JUDGE_TOPIC_SUFFIX,
    KINDS,
    LEADER_KINDS,
    LEADER_TOPIC_SUFFIX,
    MAX_PROMPT_CHARS,
    MAX_REASON_CHARS,
    MAX_RESPONSE_CHARS,
    MESH_KINDS,
    MESH_TOPIC,
    Body,
    body_from_wire,
)
from protocol.wire import MAX_ENVELOPE_BYTES

__all__ = [
    "ENVELOPE_FIELDS",
    "MAX_ENVELOPE_BYTES",
    "MAX_PROMPT_CHARS",
    "MAX_REASON_CHARS",
    "MAX_RESPONSE_CHARS",
    "MAX_SEQ",
    "PROTOCOL_VERSION",
    "SIGNING_CONTEXT",
    "TASK_RE",
    "Envelope",
    "ReplayGuard",
    "canonical",
    "judge_topic",
    "leader_topic",
    "open_envelope",
    "seal",
    "statement_digest",
    "topic_for",
    "validate_task",
]

logger = logging.getLogger(__name__)

# v2: blind judging (responses to the leader, items to the verifiers, scores by label), the
# result commits to its inputs, reveal at finalize. A node meeting v1 says so once (VersionError).
PROTOCOL_VERSION = 2
MAX_SEQ = 2**63 - 1
MAX_TS_MS = 2**63 - 1
# Domain separation: our signatures can never be confused with libp2p's pubsub signatures.
SIGNING_CONTEXT = b"rnet-inference/envelope/v1\x00"
ENVELOPE_FIELDS = ("v", "kind", "task", "from", "seq", "ts", "body", "sig")
# Task ids are topic names: short, printable, no "/" so they can never collide with swarm/mesh.
TASK_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def validate_task(task: object, kind: str = "advertise") -> str:
    """A session kind needs a task id matching :data:`TASK_RE`; mesh-only kinds carry ``""``."""
    if not isinstance(task, str):
        raise MalformedError(
            f"expected str, got {type(task).__name__}", field="task", reason="bad_type"
        )
    if kind in ("presence", "bootmesh"):
        if task:
            raise RangeError(f"{kind} carries no task", field="task")
        return task
    if not TASK_RE.fullmatch(task):
        raise RangeError(
            f"task id {task[:80]!r} must match {TASK_RE.pattern} (letters, digits, . _ : -)",
            field="task",
        )
    return task


def leader_topic(task: str) -> str:
    """The session's topic for messages only its leader needs (``join``, ``score``, ``scores``).

    Only the leader subscribes to it, so through the hub each such message costs two hops
    instead of one delivery per participant (joins and score batches are most of a session's
    messages). Participants publish into it without subscribing.
    """
    return task + LEADER_TOPIC_SUFFIX


def judge_topic(task: str) -> str:
    """The session's topic for ``item`` messages (blind judging): every joiner subscribes when
    it joins (so no item can outrun a verifier's subscription) and an executor leaves it once
    assigned, so no executor is sent another's answer."""
    return task + JUDGE_TOPIC_SUFFIX


def topic_for(kind: str, task: str) -> str:
    """Where a message of ``kind`` is published: ``swarm/mesh``, the session's leader topic
    (:func:`leader_topic`), its judge topic (:func:`judge_topic`) or the session's own topic
    (its task id)."""
    if kind in MESH_KINDS:
        return MESH_TOPIC
    if kind in LEADER_KINDS:
        return leader_topic(task)
    if kind in JUDGE_KINDS:
        return judge_topic(task)
    return task


def statement_digest(kind: str, task: str, sender: bytes, body: Body) -> bytes:
    """sha256 of what a signed envelope *says*: kind, task, sender and body, without the seq,
    timestamp and signature. A result commits to these digests: the leader can compute one for
    a message it has not sealed yet, and a copy re-signed with another seq is the same statement.
    """
    return hashlib.sha256(
        b"rnet-inference/statement/v2\x00"
        + canonical({"kind": kind, "task": task, "from": sender, "body": body.to_wire()})
    ).digest()


def _canonical_value(value: Any) -> Any:
    if isinstance(value, dict):
        # str keys and bytes keys never share a map in our bodies; the tuple keeps hostile
        # input (mixed keys) from raising TypeError here.
        items = sorted(value.items(), key=lambda kv: (isinstance(kv[0], bytes), kv[0]))
        return OrderedDict((k, _canonical_value(v)) for k, v in items)
    if isinstance(value, list | tuple):
        return [_canonical_value(v) for v in value]
    return value


def canonical(value: Any) -> bytes:
    """The one msgpack encoding of ``value`` (sorted map keys) that signatures cover."""
    return msgpack.packb(_canonical_value(value), use_bin_type=True)


_PLAIN_SCALARS = (type(None), bool, int, float, str, bytes)


def _check_plain(value: Any, depth: int = 0) -> None:
    """Reject msgpack extension values (timestamps, ExtType): bodies are plain data."""
    if depth > 32:
        raise MalformedError("nested too deeply", reason="bad_type")
    if isinstance(value, _PLAIN_SCALARS):
        return
    if isinstance(value, list):
        for v in value:
            _check_plain(v, depth + 1)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            _check_plain(k, depth + 1)
            _check_plain(v, depth + 1)
        return
    raise MalformedError(f"unsupported msgpack type {type(value).__name__}", reason="bad_type")


def _reject_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code} not allowed")


@dataclass(frozen=True, slots=True)
class Envelope:
    """A verified (or freshly sealed) message. ``raw`` is exactly the bytes on the wire."""

    v: int
    kind: str
    task: str
    sender: bytes
    seq: int
    ts_ms: int
    body: Body
    sig: bytes
    raw: bytes

    @property
    def topic(self) -> str:
        return topic_for(self.kind, self.task)

    @property
    def digest(self) -> bytes:
        """The statement digest (:func:`statement_digest`) a result commits to."""
        return statement_digest(self.kind, self.task, self.sender, self.body)

    def __repr__(self) -> str:
        return (
            f"Envelope({self.kind} task={self.task!r} from={short_id(self.sender)} "
            f"seq={self.seq} ts={self.ts_ms})"
        )


def _signed_map(
    kind: str, task: str, sender: bytes, seq: int, ts_ms: int, body: dict[str, Any]
) -> dict[str, Any]:
    return {
        "v": PROTOCOL_VERSION,
        "kind": kind,
        "task": task,
        "from": sender,
        "seq": seq,
        "ts": ts_ms,
        "body": body,
    }


def seal(body: Body, *, task: str, signer: Signer, seq: int, ts_ms: int) -> Envelope:
    """Sign ``body`` as ``signer``; the result's ``raw`` is ready to publish.

    ``seq`` must grow per sender (start it from ``time.time_ns()`` so a restarted node does not
    reuse numbers); ``ts_ms`` is the sender's wall clock, informational only.
    """
    kind = type(body).KIND
    validate_task(task, kind)
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
        raise RangeError(f"seq {seq!r} not in [0, 2^63)", field="seq")
    if isinstance(ts_ms, bool) or not isinstance(ts_ms, int) or not 0 <= ts_ms <= MAX_TS_MS:
        raise RangeError(f"ts {ts_ms!r} not in [0, 2^63)", field="ts")
    sender = signer.peer_id
    if not is_peer_id(sender):
        raise IdentityError("signer has no Ed25519 peer ID", field="from")
    unsigned = _signed_map(kind, task, sender, seq, ts_ms, body.to_wire())
    sig = signer.sign(SIGNING_CONTEXT + canonical(unsigned))
    raw = canonical({**unsigned, "sig": sig})
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise OversizeError(f"{len(raw)} bytes > {MAX_ENVELOPE_BYTES}", field="envelope")
    return Envelope(PROTOCOL_VERSION, kind, task, sender, seq, ts_ms, body, sig, raw)


def _field_int(data: dict[str, Any], name: str, hi: int) -> int:
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedError(
            f"expected int, got {type(value).__name__}", field=name, reason="bad_type"
        )
    if not 0 <= value <= hi:
        raise RangeError(f"{value} out of range", field=name)
    return value


def open_envelope(data: bytes, *, expected_sender: bytes | None = None) -> Envelope:
    """Decode and verify wire bytes. Raises only :class:`ProtocolError` subclasses.

    ``expected_sender`` is the transport-level origin (the pubsub message's ``from_id``); the
    envelope's ``from`` must match it when given.
    """
    if isinstance(data, bytearray | memoryview):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise MalformedError(f"expected bytes, got {type(data).__name__}", reason="bad_type")
    if len(data) > MAX_ENVELOPE_BYTES:
        raise OversizeError(f"{len(data)} bytes > {MAX_ENVELOPE_BYTES}", field="envelope")
    try:
        decoded = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            ext_hook=_reject_ext,
        )
    except Exception as exc:  # msgpack raises many unrelated types on garbage; all mean the same
        raise MalformedError(f"not msgpack: {exc}", reason="not_msgpack") from None
    _check_plain(decoded)
    if not isinstance(decoded, dict):
        raise MalformedError("envelope is not a map", reason="bad_type")
    for name in ENVELOPE_FIELDS:
        if name not in decoded:
            raise MalformedError("missing field", field=name, reason="missing_field")
    for name in decoded:
        if name not in ENVELOPE_FIELDS:
            raise MalformedError(f"unknown field {name!r}", field=str(name), reason="unknown_field")

    v = decoded["v"]
    if isinstance(v, bool) or v != PROTOCOL_VERSION or not isinstance(v, int):
        raise VersionError(f"version {v!r} (this node speaks {PROTOCOL_VERSION})", field="v")
    kind = decoded["kind"]
    if not isinstance(kind, str) or kind not in KINDS:
        raise UnknownKindError(f"unknown kind {str(kind)[:40]!r}", field="kind")
    task = validate_task(decoded["task"], kind)
    sender = decoded["from"]
    if not is_peer_id(sender):
        raise IdentityError("from is not an Ed25519 peer ID", field="from")
    seq = _field_int(decoded, "seq", MAX_SEQ)
    ts_ms = _field_int(decoded, "ts", MAX_TS_MS)
    sig = decoded["sig"]
    if not isinstance(sig, bytes) or len(sig) != 64:
        raise MalformedError("sig must be 64 bytes", field="sig", reason="bad_type")
    body_map = decoded["body"]
    if not isinstance(body_map, dict):
        raise MalformedError("body is not a map", field="body", reason="bad_type")
    if canonical(decoded) != data:
        raise MalformedError("not in canonical encoding", reason="non_canonical")
    if expected_sender is not None and sender != expected_sender:
        raise SenderMismatchError(
            f"from {short_id(sender)} but delivered by {short_id(expected_sender)}", field="from"
        )
    unsigned = _signed_map(kind, task, sender, seq, ts_ms, body_map)
    if not verify(sender, SIGNING_CONTEXT + canonical(unsigned), sig):
        raise SignatureError(f"signature does not match {short_id(sender)}", field="sig")
    try:
        body = body_from_wire(kind, body_map)
    except ProtocolError as exc:
        exc.field = f"body.{exc.field}" if exc.field else "body"
        raise
    return Envelope(PROTOCOL_VERSION, kind, task, sender, seq, ts_ms, body, sig, data)


class ReplayGuard:
    """Rejects a ``(from, seq)`` seen before.

    Per sender it keeps the highest ``seq`` and the set of seqs within ``window`` below it, so
    modest reordering is fine while anything older than the window is refused as a replay.
    Senders are forgotten least-recently-used beyond ``max_senders`` (memory stays bounded; a
    forgotten sender's very old messages still fail the session rules on duplicates).
    Call it only on envelopes that passed :func:`open_envelope` (forged seqs cannot poison it).
    """

    def __init__(self, *, window: int = 4096, max_senders: int = 4096) -> None:
        if window < 1 or max_senders < 1:
            raise ValueError("window and max_senders must be positive")
        self.window = window
        self.max_senders = max_senders
        self._peers: OrderedDict[bytes, tuple[int, set[int]]] = OrderedDict()
        self.rejected = 0

    def check(self, env: Envelope) -> None:
        """Record ``env``; raise :class:`ReplayError` if its ``(from, seq)`` was seen."""
        self.check_seq(env.sender, env.seq)

    def check_seq(self, sender: bytes, seq: int) -> None:
        state = self._peers.get(sender)
        if state is None:
            self._peers[sender] = (seq, {seq})
            if len(self._peers) > self.max_senders:
                self._peers.popitem(last=False)
            return
        self._peers.move_to_end(sender)
        high, recent = state
        if seq in recent or seq <= high - self.window:
            self.rejected += 1
            raise ReplayError(f"seq {seq} from {short_id(sender)} already seen", field="seq")
        recent.add(seq)
        if seq > high:
            high = seq
            floor = high - self.window
            if len(recent) > self.window:
                recent = {s for s in recent if s > floor}
        self._peers[sender] = (high, recent)
