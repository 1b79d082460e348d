"""Envelope: strict decoding, signatures from the peer ID alone, canonical bytes, replay guard."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.envelope import (
    MAX_ENVELOPE_BYTES,
    PROTOCOL_VERSION,
    ReplayGuard,
    canonical,
    leader_topic,
    open_envelope,
    seal,
    topic_for,
)
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
from protocol.messages import MESH_TOPIC, Advertise, Body, Join, Score
from tests.protocol.strategies import PEERS, SIGNERS, bodies, task_for

ALICE, BOB = SIGNERS[0], SIGNERS[1]


def sealed(body: Body | None = None, **kw: object) -> bytes:
    body = body or Join(model="m", backend="sim")
    args = {"task": task_for(body), "signer": ALICE, "seq": 1, "ts_ms": 1_000, **kw}
    return seal(body, **args).raw  # type: ignore[arg-type]


def reencode(raw: bytes, **changes: object) -> bytes:
    """Decode, change fields, re-encode canonically (the signature stays the old one)."""
    data = msgpack.unpackb(raw, raw=False)
    data.update(changes)
    return canonical(data)


@given(bodies, st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1))
def test_seal_open_round_trips_every_kind(body: Body, seq: int, ts: int) -> None:
    env = seal(body, task=task_for(body), signer=ALICE, seq=seq, ts_ms=ts)
    got = open_envelope(env.raw, expected_sender=ALICE.peer_id)
    assert got == env
    assert got.body == body
    if body.KIND in ("advertise", "presence", "bootmesh"):
        assert got.topic == MESH_TOPIC
    elif body.KIND in ("join", "response", "score", "scores"):
        assert got.topic == "task-1/lead"  # only the leader needs these
    elif body.KIND == "item":
        assert got.topic == "task-1/judge"  # the verifiers' topic
    else:
        assert got.topic == "task-1"


@given(st.binary(max_size=512))
def test_arbitrary_bytes_raise_only_protocol_error(data: bytes) -> None:
    try:
        open_envelope(data)
    except ProtocolError:
        pass


plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    | st.text(max_size=10) | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "v": plain | st.just(1),
            "kind": plain | st.sampled_from(["join", "score", "result", "bootmesh"]),
            "task": plain | st.just("t"),
            "from": plain | st.sampled_from(PEERS),
            "seq": plain,
            "ts": plain,
            "body": plain,
            "sig": plain | st.binary(min_size=64, max_size=64),
        },
    )
)
def test_arbitrary_envelope_shaped_maps_raise_only_protocol_error(data: dict) -> None:
    try:
        open_envelope(msgpack.packb(data, use_bin_type=True))
    except ProtocolError:
        pass


@settings(max_examples=60)
@given(bodies, st.data())
def test_flipping_any_byte_is_rejected(body: Body, data: st.DataObject) -> None:
    raw = seal(body, task=task_for(body), signer=ALICE, seq=1_000, ts_ms=5).raw
    index = data.draw(st.integers(0, len(raw) - 1))
    mask = data.draw(st.integers(1, 255))
    flipped = bytearray(raw)
    flipped[index] ^= mask
    with pytest.raises(ProtocolError):
        open_envelope(bytes(flipped))


def test_every_byte_flip_of_one_envelope_rejected() -> None:
    raw = sealed(Score(label="C", score=0.42, reason="ok", judge_model="j"), seq=300)
    for index in range(len(raw)):
        for mask in (0x01, 0x1C, 0x80):  # 0x1c turns uint16 into int16: same value, other bytes
            flipped = bytearray(raw)
            flipped[index] ^= mask
            with pytest.raises(ProtocolError):
                open_envelope(bytes(flipped))


def test_typed_errors() -> None:
    raw = sealed()
    cases = [
        (b"\xc1", MalformedError, "not_msgpack"),
        (msgpack.packb([1, 2]), MalformedError, "bad_type"),
        (reencode(raw, v=1), VersionError, "unknown_version"),
        (reencode(raw, v=True), VersionError, "unknown_version"),
        (reencode(raw, kind="bid"), UnknownKindError, "unknown_kind"),
        (reencode(raw, seq=-1), RangeError, "out_of_range"),
        (reencode(raw, seq="1"), MalformedError, "bad_type"),
        (reencode(raw, task="swarm/mesh"), RangeError, "out_of_range"),
        (reencode(raw, task=""), RangeError, "out_of_range"),
        (reencode(raw, **{"from": b"\x00" * 38}), IdentityError, "bad_peer_id"),
        (reencode(raw, **{"from": BOB.peer_id}), SignatureError, "bad_signature"),
        (reencode(raw, body={"model": "x", "backend": "sim"}), SignatureError, "bad_signature"),
        (reencode(raw, extra=1), MalformedError, "unknown_field"),
        (b"\x00" * (MAX_ENVELOPE_BYTES + 1), OversizeError, "oversize"),
        (b"\xdd\xff\xff\xff\xff", MalformedError, "not_msgpack"),  # 4G-entry array, 5 bytes
        (b"\xdf\xff\xff\xff\xff", MalformedError, "not_msgpack"),
        (b"\x91" * 5_000 + b"\xc0", MalformedError, "not_msgpack"),  # nesting bomb
        (msgpack.packb({"v": msgpack.ExtType(1, b"x")}), MalformedError, "not_msgpack"),
    ]
    for data, error, reason in cases:
        with pytest.raises(error) as info:
            open_envelope(data)
        assert info.value.reason == reason, (data[:40], info.value)
    no_seq = msgpack.unpackb(raw, raw=False)
    del no_seq["seq"]
    with pytest.raises(MalformedError) as info:
        open_envelope(canonical(no_seq))
    assert (info.value.reason, info.value.field) == ("missing_field", "seq")


def test_body_errors_name_the_body_field() -> None:
    body = Score(label="C", score=0.5).to_wire()
    body["score"] = 1.5
    # a correctly signed envelope whose body is out of range: signed by ALICE over the bad body
    from protocol.envelope import SIGNING_CONTEXT

    unsigned = {
        "v": PROTOCOL_VERSION,
        "kind": "score",
        "task": "t",
        "from": ALICE.peer_id,
        "seq": 1,
        "ts": 0,
        "body": body,
    }
    raw = canonical({**unsigned, "sig": ALICE.sign(SIGNING_CONTEXT + canonical(unsigned))})
    with pytest.raises(RangeError) as info:
        open_envelope(raw)
    assert info.value.field == "body.score"


def test_non_canonical_encoding_rejected() -> None:
    raw = sealed(seq=1_000)
    data = msgpack.unpackb(raw, raw=False)
    reordered = msgpack.packb(dict(reversed(list(data.items()))), use_bin_type=True)
    assert reordered != raw
    with pytest.raises(MalformedError) as info:
        open_envelope(reordered)
    assert info.value.reason == "non_canonical"


def test_expected_sender_checked() -> None:
    raw = sealed()
    assert open_envelope(raw, expected_sender=ALICE.peer_id).sender == ALICE.peer_id
    with pytest.raises(SenderMismatchError):
        open_envelope(raw, expected_sender=BOB.peer_id)


def test_seal_rejects_bad_task_and_seq() -> None:
    with pytest.raises(RangeError):
        seal(Join(model="m", backend="b"), task="has space", signer=ALICE, seq=1, ts_ms=0)
    with pytest.raises(RangeError):
        seal(Join(model="m", backend="b"), task="t", signer=ALICE, seq=-1, ts_ms=0)
    with pytest.raises(RangeError):
        seal(Advertise(prompt="p"), task="", signer=ALICE, seq=1, ts_ms=0)


def test_topic_for() -> None:
    assert topic_for("advertise", "t1") == MESH_TOPIC
    assert topic_for("score", "t1") == "t1/lead"
    assert topic_for("join", "t1") == leader_topic("t1") == "t1/lead"
    assert topic_for("response", "t1") == "t1/lead"  # blind: answers go to the leader only
    assert topic_for("item", "t1") == "t1/judge"
    assert topic_for("result", "t1") == topic_for("reveal", "t1") == "t1"


def test_replay_guard() -> None:
    guard = ReplayGuard(window=10)
    envs = [open_envelope(sealed(seq=s)) for s in (100, 101, 99, 120)]
    for env in envs:
        guard.check(env)
    with pytest.raises(ReplayError):
        guard.check(envs[0])  # exact replay
    with pytest.raises(ReplayError):
        guard.check_seq(ALICE.peer_id, 105)  # older than the window below 120
    guard.check_seq(ALICE.peer_id, 115)  # reordered but within the window
    guard.check_seq(BOB.peer_id, 100)  # other senders are independent
    assert guard.rejected == 2


def test_replay_guard_memory_bounded() -> None:
    guard = ReplayGuard(window=4, max_senders=2)
    for seq in range(1_000):
        guard.check_seq(ALICE.peer_id, seq)
    high, recent = guard._peers[ALICE.peer_id]
    assert high == 999 and len(recent) <= 5
    guard.check_seq(BOB.peer_id, 1)
    guard.check_seq(PEERS[2], 1)
    assert len(guard._peers) == 2


def sign_raw(kind: str, task: str, body: object, signer=ALICE) -> bytes:  # type: ignore[no-untyped-def]
    """A correctly signed envelope around an arbitrary (possibly invalid) body map."""
    from protocol.envelope import SIGNING_CONTEXT

    unsigned = {
        "v": PROTOCOL_VERSION,
        "kind": kind,
        "task": task,
        "from": signer.peer_id,
        "seq": 1,
        "ts": 0,
        "body": body,
    }
    return canonical({**unsigned, "sig": signer.sign(SIGNING_CONTEXT + canonical(unsigned))})


@settings(max_examples=150)
@given(bodies, st.data())
def test_signed_hostile_bodies_raise_only_protocol_error(body: Body, data: st.DataObject) -> None:
    """Past the signature check, body validation must still never crash on any value."""
    wire = body.to_wire()
    key = data.draw(st.sampled_from(sorted(wire)))
    wire[key] = data.draw(plain | st.sampled_from(PEERS) | st.lists(st.sampled_from(PEERS)))
    if data.draw(st.booleans()):
        wire[data.draw(st.text(max_size=5))] = data.draw(plain)
    raw = sign_raw(body.KIND, task_for(body), wire)
    try:
        env = open_envelope(raw)
    except ProtocolError as exc:
        assert exc.field is None or exc.field.startswith("body")
        return
    assert env.body.to_wire() is not None  # accepted: then it is a valid, re-encodable body
