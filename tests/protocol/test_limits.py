"""protocol.limits: token buckets, strikes and blocks, arrival caps, topic checks (pure, clocked)."""

from __future__ import annotations

import pytest

from protocol.limits import MAX_TOPICS_PER_PEER, Arrivals, Strikes, TokenBucket, topic_refusal

A, B = b"peer-a", b"peer-b"


def test_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=5)
    assert all(bucket.allow(A, 0.0) for _ in range(5))
    assert not bucket.allow(A, 0.0)
    assert bucket.allow(B, 0.0), "buckets are per peer"
    assert bucket.allow(A, 0.1)  # one token back after 1/rate
    assert not bucket.allow(A, 0.1)
    assert sum(bucket.allow(A, 10.0) for _ in range(50)) == 5, "refill stops at burst"


def test_bucket_rate_zero_is_unlimited_and_memory_is_bounded() -> None:
    assert all(TokenBucket(rate=0, burst=0).allow(A, 0.0) for _ in range(1000))
    bucket = TokenBucket(rate=1, burst=1, max_peers=3)
    for i in range(10):
        bucket.allow(bytes([i]), 0.0)
    assert len(bucket._buckets) == 3
    with pytest.raises(ValueError):
        TokenBucket(rate=1, burst=0)


def test_strikes_block_after_threshold_within_window_and_expire() -> None:
    strikes = Strikes(threshold=3, window=10, block_s=60)
    assert not strikes.strike(A, 0.0)
    assert not strikes.strike(A, 1.0)
    assert strikes.strike(A, 2.0), "third strike within the window blocks"
    assert strikes.blocked(A, 30.0) and not strikes.blocked(B, 30.0)
    assert not strikes.strike(A, 31.0), "a blocked peer is not blocked twice"
    assert strikes.blocked_until(A) == 62.0
    assert not strikes.blocked(A, 62.0), "a block is for a while"


def test_strikes_spread_out_never_block() -> None:
    strikes = Strikes(threshold=3, window=10, block_s=60)
    assert not any(strikes.strike(A, t * 6.0) for t in range(20))
    strikes.strike(B, 0)
    strikes.strike(B, 0)
    strikes.unblock(B)
    assert not strikes.strike(B, 0), "unblock also forgets the strikes"


def test_arrivals_cap_per_ip_and_new_peers_per_minute() -> None:
    arrivals = Arrivals(per_ip=2, per_minute=3)
    assert arrivals.admit(b"1", "10.0.0.1", 0) is None
    assert arrivals.admit(b"2", "10.0.0.1", 0) is None
    assert arrivals.admit(b"1", "10.0.0.1", 0) is None, "an admitted peer again is fine"
    assert "10.0.0.1" in (arrivals.admit(b"3", "10.0.0.1", 0) or "")
    assert arrivals.admit(b"3", "10.0.0.2", 0) is None
    assert "new peers" in (arrivals.admit(b"4", "10.0.0.3", 1) or "")
    arrivals.left(b"1")
    assert arrivals.connections("10.0.0.1") == 1
    assert arrivals.admit(b"1", "10.0.0.1", 2) is None, "a known peer is not new"
    assert arrivals.admit(b"4", "10.0.0.3", 61) is None, "the minute passed"


def test_arrivals_zero_means_no_cap() -> None:
    arrivals = Arrivals(per_ip=0, per_minute=0)
    assert all(arrivals.admit(bytes([i]), "1.2.3.4", 0) is None for i in range(200))


@pytest.mark.parametrize(
    ("topic", "count", "reason"),
    [
        ("abc-123", 0, None),
        ("x" * 128, 0, None),
        ("x" * 129, 0, "bad_topic"),
        ("", 0, "bad_topic"),
        ("a b", 0, "bad_topic"),
        ("a\x00b", 0, "bad_topic"),
        ("ok", MAX_TOPICS_PER_PEER - 1, None),
        ("ok", MAX_TOPICS_PER_PEER, "too_many_topics"),
    ],
)
def test_topic_refusal(topic: str, count: int, reason: str | None) -> None:
    assert topic_refusal(topic, count) == reason


def test_fit_bootmesh_keeps_the_mesh_first_and_says_what_was_left_out() -> None:
    from protocol.identity import ED25519_PEER_ID_PREFIX
    from protocol.limits import fit_bootmesh

    peers = [ED25519_PEER_ID_PREFIX + i.to_bytes(32, "big") for i in range(1100)]
    view = {f"t{i:03d}": peers[: i % 5 + 1] for i in range(400)}
    view["swarm/mesh"] = peers[:1]
    view["x" * 200] = peers[:1]  # could never be sent: left out, counted
    fitted, left_out = fit_bootmesh(view)
    assert next(iter(fitted)) == "swarm/mesh"
    assert len(fitted) == 256 and left_out == len(view) - 256
    assert "x" * 200 not in fitted
    big = {f"t{i}": peers for i in range(10)}
    fitted, left_out = fit_bootmesh(big)
    assert left_out > 0 and sum(len(p) for p in fitted.values()) * 40 < 200 * 1024
    from protocol.messages import Bootmesh

    Bootmesh(topics=fitted)  # always a valid message
