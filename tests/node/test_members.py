"""node.members and ``rnet member``: the bootstrap's list on disk, certificates presented."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from node.cmd_member import parse_expiry
from node.runtime.members import MemberBook, MemberDirectory, now_ms
from protocol.identity import NaclSigner
from protocol.membership import issue

BOOT = NaclSigner(b"\x01" * 32)
ALICE = NaclSigner(b"\x03" * 32).peer_id
BOB = NaclSigner(b"\x04" * 32).peer_id


def test_book_round_trip_and_the_running_bootstrap_sees_changes(tmp_path: Path) -> None:
    writer = MemberBook(tmp_path, BOOT.peer_id)
    running = MemberBook(tmp_path, BOOT.peer_id)
    assert not running.is_member(ALICE) and running.is_member(BOOT.peer_id)
    writer.add(issue(BOOT, ALICE, name="alice", now_ms=now_ms()))
    writer.save()
    os.utime(writer.path, (1, 1))  # a different mtime than the (empty) state it read
    running.reload(force=True)
    assert running.is_member(ALICE) and not running.is_member(BOB)
    assert writer.remove(ALICE) and not writer.remove(ALICE)
    writer.save()
    running.reload(force=True)
    assert not running.is_member(ALICE)


def test_book_skips_bad_entries_and_refuses_foreign_certificates(tmp_path: Path) -> None:
    other_boot = NaclSigner(b"\x02" * 32)
    book = MemberBook(tmp_path, BOOT.peer_id)
    with pytest.raises(ValueError):
        book.add(issue(other_boot, ALICE, name="x", now_ms=now_ms()))
    (tmp_path / "members.json").write_text('{"members": {"nonsense": "rnetcert1:xx"}}')
    book.reload(force=True)
    assert book.certs() == []
    (tmp_path / "members.json").write_text("not json")
    book.reload(force=True)
    assert book.certs() == []


def test_expired_membership_is_no_membership(tmp_path: Path) -> None:
    book = MemberBook(tmp_path, BOOT.peer_id)
    book.add(issue(BOOT, ALICE, name="a", now_ms=now_ms() - 10_000, expires_ms=now_ms() - 1))
    assert book.cert_for(ALICE) is None


def test_directory_accepts_only_the_bootstraps_certificate_for_that_peer() -> None:
    directory = MemberDirectory(BOOT.peer_id)
    cert = issue(BOOT, ALICE, name="alice", now_ms=now_ms()).to_bytes()
    assert not directory.present(BOB, cert), "Alice's certificate presented by Bob"
    assert not directory.present(ALICE, b"garbage")
    assert directory.present(ALICE, cert)
    assert directory.is_member(ALICE) and directory.name_of(ALICE) == "alice"
    assert directory.is_member(BOOT.peer_id) and not directory.is_member(BOB)
    assert not MemberDirectory(None).present(ALICE, cert)


def test_parse_expiry() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert parse_expiry("12h", now) == int((now.timestamp() + 12 * 3600) * 1000)
    assert parse_expiry("2w", now) == int((now.timestamp() + 14 * 86_400) * 1000)
    assert parse_expiry("2026-02-01", now) == int(
        dt.datetime(2026, 2, 1, tzinfo=dt.UTC).timestamp() * 1000
    )
    for bad in ("0d", "soon", "2025-01-01", "12x"):
        with pytest.raises(ValueError):
            parse_expiry(bad, now)
