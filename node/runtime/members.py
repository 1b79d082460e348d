"""Closed swarms on the node side: the bootstrap's member list, and who proved membership.

- :class:`MemberBook` is the bootstrap's list, ``<bootstrap data dir>/members.json`` (peer ID ->
  certificate text), written by ``rnet member add|remove`` and read by the running bootstrap
  (re-read when the file changes, so adding or removing a member needs no restart).
- :class:`MemberDirectory` is what every node knows: certificates peers presented in their
  presence, checked against the bootstrap's key (issuer) and the clock.

The file is replaced atomically (write a temporary file, then rename), so a bootstrap never reads
half of it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from protocol.errors import ProtocolError
from protocol.identity import peer_id_from_str, peer_id_to_str
from protocol.membership import MemberCert

logger = logging.getLogger(__name__)

__all__ = ["MEMBERS_FILE", "MemberBook", "MemberDirectory", "Membership", "now_ms"]

MEMBERS_FILE = "members.json"
RELOAD_EVERY_S = 1.0  # how often the running bootstrap looks at the file's mtime at most


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class MemberBook:
    """The bootstrap's member list (module docstring). ``issuer``: the bootstrap's peer ID."""

    def __init__(self, data_dir: Path, issuer: bytes) -> None:
        self.path = Path(data_dir) / MEMBERS_FILE
        self.issuer = issuer
        self._certs: dict[bytes, MemberCert] = {}
        self._mtime: float | None = None
        self._checked = -1e9
        self.reload(force=True)

    def reload(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < RELOAD_EVERY_S:
            return
        self._checked = now
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._certs, self._mtime = {}, None
            return
        if not force and mtime == self._mtime:
            return
        self._mtime = mtime
        self._certs = self._read()

    def _read(self) -> dict[bytes, MemberCert]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            logger.error("cannot read %s: %s (no members until it is fixed)", self.path, exc)
            return {}
        certs = {}
        for peer, text in (raw.get("members") or {}).items() if isinstance(raw, dict) else ():
            try:
                cert = MemberCert.from_text(text)
                if cert.peer != peer_id_from_str(peer) or cert.issuer != self.issuer:
                    raise ValueError("certificate of another peer or another bootstrap")
            except (ProtocolError, ValueError, TypeError) as exc:
                logger.warning("%s: skipping %s: %s", self.path, peer, exc)
                continue
            certs[cert.peer] = cert
        return certs

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"members": {peer_id_to_str(p): c.to_text() for p, c in sorted(self._certs.items())}}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)
        self._mtime = self.path.stat().st_mtime

    def add(self, cert: MemberCert) -> None:
        if cert.issuer != self.issuer:
            raise ValueError("certificate signed by another bootstrap")
        self._certs[cert.peer] = cert

    def remove(self, peer: bytes) -> bool:
        return self._certs.pop(peer, None) is not None

    def certs(self) -> list[MemberCert]:
        return sorted(self._certs.values(), key=lambda c: (c.name, c.peer))

    def cert_for(self, peer: bytes) -> MemberCert | None:
        """The peer's certificate if it is a member now (valid, not expired)."""
        self.reload()
        cert = self._certs.get(peer)
        if cert is None or not cert.valid(issuer=self.issuer, peer=peer, now_ms=now_ms()):
            return None
        return cert

    def is_member(self, peer: bytes) -> bool:
        return peer == self.issuer or self.cert_for(peer) is not None


class MemberDirectory:
    """Certificates peers presented (in presence), checked against ``issuer``; bounded."""

    def __init__(self, issuer: bytes | None, *, max_peers: int = 10_000) -> None:
        self.issuer = issuer
        self._certs: dict[bytes, MemberCert] = {}
        self._max = max_peers

    def present(self, peer: bytes, raw: bytes) -> bool:
        """Record ``peer``'s certificate if it checks out; True if it does."""
        if self.issuer is None or not raw:
            return False
        try:
            cert = MemberCert.from_bytes(raw)
            cert.check(issuer=self.issuer, peer=peer, now_ms=now_ms())
        except ProtocolError as exc:
            logger.info("membership of %s not accepted: %s", peer_id_to_str(peer)[-6:], exc)
            return False
        if peer not in self._certs and len(self._certs) >= self._max:
            self._certs.pop(next(iter(self._certs)))
        self._certs[peer] = cert
        return True

    def is_member(self, peer: bytes) -> bool:
        if peer == self.issuer:
            return True
        cert = self._certs.get(peer)
        return cert is not None and (not cert.expires_ms or now_ms() < cert.expires_ms)

    def name_of(self, peer: bytes) -> str:
        cert = self._certs.get(peer)
        return cert.name if cert is not None else ""


class Membership:
    """One node's view of a closed swarm (a runtime component).

    ``mode`` "required" closes the swarm; "open" keeps everything as if this did not exist.
    ``issuer`` is the bootstrap's peer ID (the bootstrap's own, on the bootstrap). The bootstrap
    keeps a :class:`MemberBook`; every node keeps the certificates peers presented (a
    :class:`MemberDirectory`) and its own certificate, which it presents in its presence.
    """

    def __init__(self, mode: str, me: bytes, issuer: bytes | None, book_dir: Path | None) -> None:
        self.mode = mode
        self.me = me
        self.book = MemberBook(book_dir, issuer) if book_dir is not None and issuer else None
        self.directory = MemberDirectory(issuer)
        self.own_cert = b""

    @property
    def closed(self) -> bool:
        return self.mode == "required"

    def is_member(self, peer: bytes) -> bool:
        """May ``peer`` take part (the bootstrap asks its list, others the certificates seen)."""
        if self.book is not None:
            return self.book.is_member(peer)
        return self.directory.is_member(peer)

    def cert_text_for(self, peer: str) -> str:
        """Bootstrap: ``peer``'s certificate text if it is a member now ('' otherwise)."""
        if self.book is None or not peer:
            return ""
        try:
            cert = self.book.cert_for(peer_id_from_str(peer))
        except ProtocolError:
            return ""
        return cert.to_text() if cert is not None else ""

    def presented(self, peer: bytes, raw: bytes) -> None:
        """A certificate in ``peer``'s presence."""
        if raw:
            self.directory.present(peer, raw)

    def listed(self, peer: str, text: str) -> None:
        """A member's certificate as the bootstrap's peer list gave it (checked the same way)."""
        try:
            self.directory.present(peer_id_from_str(peer), MemberCert.from_text(text).to_bytes())
        except ProtocolError as exc:
            logger.info("certificate of %s in the peer list ignored: %s", peer[-6:], exc)

    def set_own(self, text: str) -> bool:
        """Our certificate, as the bootstrap handed it over; True if it is new (re-announce)."""
        try:
            cert = MemberCert.from_text(text)
        except ProtocolError as exc:
            logger.warning("the bootstrap sent a certificate that does not decode: %s", exc)
            return False
        if cert.peer != self.me or not self.directory.present(self.me, cert.to_bytes()):
            logger.warning("the bootstrap sent a certificate that is not ours or does not verify")
            return False
        if cert.to_bytes() == self.own_cert:
            return False
        self.own_cert = cert.to_bytes()
        logger.info("member of this closed swarm as %r", cert.name)
        return True
