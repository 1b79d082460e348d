"""protocol.membership: certificates issued by the bootstrap key, checked by every node."""

from __future__ import annotations

import pytest

from protocol.errors import MalformedError, OversizeError, SignatureError
from protocol.identity import NaclSigner
from protocol.membership import MemberCert, issue

BOOT = NaclSigner(b"\x01" * 32)
OTHER_BOOT = NaclSigner(b"\x02" * 32)
ALICE = NaclSigner(b"\x03" * 32).peer_id
BOB = NaclSigner(b"\x04" * 32).peer_id
NOW = 1_700_000_000_000


def test_issue_round_trip_and_check() -> None:
    cert = issue(BOOT, ALICE, name="alice", now_ms=NOW, expires_ms=NOW + 1000)
    for again in (MemberCert.from_bytes(cert.to_bytes()), MemberCert.from_text(cert.to_text())):
        assert again == cert
        again.check(issuer=BOOT.peer_id, peer=ALICE, now_ms=NOW + 999)
    assert cert.to_text().startswith("rnetcert1:")


@pytest.mark.parametrize(
    ("issuer", "peer", "now", "why"),
    [
        (OTHER_BOOT.peer_id, ALICE, NOW, "another bootstrap"),
        (BOOT.peer_id, BOB, NOW, "another peer"),
        (BOOT.peer_id, ALICE, NOW + 1000, "expired"),
    ],
)
def test_check_refuses(issuer: bytes, peer: bytes, now: int, why: str) -> None:
    cert = issue(BOOT, ALICE, name="alice", now_ms=NOW, expires_ms=NOW + 1000)
    with pytest.raises(SignatureError, match=why):
        cert.check(issuer=issuer, peer=peer, now_ms=now)
    assert not cert.valid(issuer=issuer, peer=peer, now_ms=now)


def test_no_expiry_and_forged_fields() -> None:
    cert = issue(BOOT, ALICE, name="alice", now_ms=NOW)
    assert cert.valid(issuer=BOOT.peer_id, peer=ALICE, now_ms=NOW * 10)
    # the same signature on another peer, another name, a later expiry: all fail
    for forged in (
        MemberCert(BOB, "alice", NOW, 0, BOOT.peer_id, cert.sig),
        MemberCert(ALICE, "mallory", NOW, 0, BOOT.peer_id, cert.sig),
        MemberCert(ALICE, "alice", NOW, 1, BOOT.peer_id, cert.sig),
    ):
        assert not forged.valid(issuer=BOOT.peer_id, peer=None, now_ms=NOW)
    # a certificate the peer signed for itself is not one from the bootstrap
    self_made = issue(NaclSigner(b"\x03" * 32), ALICE, name="me", now_ms=NOW)
    assert not self_made.valid(issuer=BOOT.peer_id, peer=ALICE, now_ms=NOW)


@pytest.mark.parametrize(
    "raw",
    [b"", b"\xc1", b"\x90", b"x" * 600, issue(BOOT, ALICE, name="a", now_ms=NOW).to_bytes()[:-1]],
)
def test_bad_bytes_are_rejected(raw: bytes) -> None:
    with pytest.raises((MalformedError, OversizeError)):
        MemberCert.from_bytes(raw)


def test_bad_text_and_bad_issue_arguments() -> None:
    for text in ("nope", "rnetcert1:!!!", "rnetcert1:"):
        with pytest.raises(MalformedError):
            MemberCert.from_text(text)
    with pytest.raises(MalformedError):
        issue(BOOT, b"not a peer", name="x", now_ms=NOW)
    with pytest.raises(MalformedError):
        issue(BOOT, ALICE, name="x", now_ms=NOW, expires_ms=NOW - 1)
    with pytest.raises(OversizeError):
        issue(BOOT, ALICE, name="x" * 65, now_ms=NOW)
