"""node.guard.NetworkGuard: the hub's checks before relay, in order, with a fake clock."""

from __future__ import annotations

from node.net.guard import GuardConfig, NetworkGuard
from protocol.envelope import open_envelope, seal
from protocol.identity import NaclSigner
from protocol.messages import Presence

LEAF = NaclSigner(b"\x01" * 32)
OTHER = NaclSigner(b"\x02" * 32)
RELAY = NaclSigner(b"\x03" * 32)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def presence(signer: NaclSigner, seq: int) -> bytes:
    return seal(Presence(name="n"), task="", signer=signer, seq=seq, ts_ms=1).raw


def make(config: GuardConfig | None = None, **kw: object) -> tuple[NetworkGuard, list, list, Clock]:
    drops: list[tuple[str, bytes]] = []
    blocks: list[bytes] = []
    clock = Clock()
    guard = NetworkGuard(
        config or GuardConfig(),
        hub=True,
        on_drop=lambda reason, peer, topic, detail: drops.append((reason, peer)),
        on_block=lambda peer, seconds, why: blocks.append(peer),
        clock=clock,
        **kw,  # type: ignore[arg-type]
    )
    return guard, drops, blocks, clock


def test_a_leaf_may_send_its_own_messages_only() -> None:
    guard, drops, _, _ = make()
    leaf = LEAF.peer_id
    assert guard.admit_message(leaf, leaf, ["swarm/mesh"], presence(LEAF, 1))
    assert not guard.admit_message(leaf, OTHER.peer_id, ["swarm/mesh"], presence(OTHER, 1))
    assert drops == [("foreign_origin", leaf)]


def test_a_configured_relay_may_forward_others() -> None:
    guard, drops, _, _ = make(GuardConfig(relays=frozenset({RELAY.peer_id})))
    assert guard.admit_message(RELAY.peer_id, OTHER.peer_id, ["swarm/mesh"], presence(OTHER, 1))
    assert drops == []


def test_payload_checks_size_decoding_signature_replay() -> None:
    guard, drops, _, _ = make()
    leaf = LEAF.peer_id
    good = presence(LEAF, 7)
    tampered = bytearray(good)
    tampered[good.index(open_envelope(good).sig) + 10] ^= 1  # one bit of the signature
    assert not guard.admit_message(leaf, leaf, ["swarm/mesh"], b"\x93garbage")
    assert not guard.admit_message(leaf, leaf, ["swarm/mesh"], bytes(tampered))
    assert not guard.admit_message(leaf, leaf, ["swarm/mesh"], b"x" * 300_000)
    assert guard.admit_message(leaf, leaf, ["swarm/mesh"], good)
    assert not guard.admit_message(leaf, leaf, ["swarm/mesh"], good)
    assert [r for r, _ in drops] == ["not_msgpack", "bad_signature", "oversize", "replay"]
    # plain text on a session topic is a console's `publish`: relayed; on the mesh it is not
    assert guard.admit_message(leaf, leaf, ["demo"], b"hello")
    assert not guard.admit_message(leaf, leaf, ["swarm/mesh"], b"hello")


def test_rate_limit_then_strikes_block_for_a_while() -> None:
    guard, drops, blocks, clock = make(GuardConfig(rate=10, burst=5, strikes=5, block_s=60))
    leaf = LEAF.peer_id
    results = [guard.admit_message(leaf, leaf, ["demo"], b"hi") for _ in range(10)]
    assert results == [True] * 5 + [False] * 5
    assert blocks == [leaf], "five drops within the window block the peer"
    assert guard.blocked(leaf)
    assert not guard.admit_message(leaf, leaf, ["demo"], b"hi")
    assert drops[-1][0] == "blocked"
    assert guard.admit_connection(leaf, "10.0.0.1") == "blocked"
    clock.now = 61.0
    assert not guard.blocked(leaf)
    assert guard.admit_message(leaf, leaf, ["demo"], b"hi")


def test_unknown_versions_and_duplicates_are_no_strikes() -> None:
    guard, _, blocks, _ = make(GuardConfig(strikes=2))
    for _ in range(5):
        guard.drop("unknown_version", LEAF.peer_id)
        guard.drop("duplicate", LEAF.peer_id)
    assert blocks == [] and guard.drops.total == 10


def test_subscriptions_and_connections() -> None:
    guard, drops, _, _ = make(GuardConfig(max_conns_per_ip=1, max_topics_per_peer=3))
    assert guard.admit_subscription(LEAF.peer_id, "ok", 2)
    assert not guard.admit_subscription(LEAF.peer_id, "x" * 200, 0)
    assert not guard.admit_subscription(LEAF.peer_id, "ok", 3)
    assert [r for r, _ in drops] == ["bad_topic", "too_many_topics"]
    assert guard.admit_connection(LEAF.peer_id, "10.0.0.1") is None
    assert "10.0.0.1" in (guard.admit_connection(OTHER.peer_id, "10.0.0.1") or "")
    assert guard.admit_connection(OTHER.peer_id, "127.0.0.1") is None, "loopback exempt"
    guard.connection_closed(LEAF.peer_id)
    assert guard.admit_connection(RELAY.peer_id, "10.0.0.1") is None


def test_a_closed_swarm_admits_members_only() -> None:
    guard, drops, _, _ = make(is_member=lambda peer: peer == LEAF.peer_id)
    assert guard.admit_connection(OTHER.peer_id, "10.0.0.2") == "not_member"
    assert not guard.admit_message(OTHER.peer_id, OTHER.peer_id, ["swarm/mesh"], presence(OTHER, 1))
    assert guard.admit_message(LEAF.peer_id, LEAF.peer_id, ["swarm/mesh"], presence(LEAF, 1))
    assert ("not_member", OTHER.peer_id) in drops


def test_a_leaf_guard_checks_subscriptions_but_not_messages() -> None:
    guard = NetworkGuard(GuardConfig(), hub=False)
    assert guard.admit_message(LEAF.peer_id, OTHER.peer_id, ["x"], b"\x00")
    assert not guard.admit_subscription(LEAF.peer_id, "a b", 0)


def test_a_known_peer_cut_off_from_the_hub_may_be_forwarded() -> None:
    guard, drops, blocks, _ = make()
    leaf, other = LEAF.peer_id, OTHER.peer_id
    assert guard.admit_connection(other, "10.0.0.2") is None
    # connected: it sends its own; a neighbour's copy is a duplicate (no strike)
    assert not guard.admit_message(leaf, other, ["swarm/mesh"], presence(OTHER, 1))
    guard.connection_closed(other)
    # cut off from the hub: its signed messages reach the hub through a neighbour
    assert guard.admit_message(leaf, other, ["swarm/mesh"], presence(OTHER, 2))
    assert [r for r, _ in drops] == ["duplicate"] and blocks == []


def test_gossipsub_hubs_do_not_bind_origins() -> None:
    guard, drops, _, _ = make(GuardConfig(bind_origin=False))
    assert guard.admit_message(LEAF.peer_id, OTHER.peer_id, ["swarm/mesh"], presence(OTHER, 1))
    assert drops == []
