"""Membership certificates: how a closed swarm knows its members (ARCHITECTURE §11).

A certificate says "``peer`` (called ``name``) is a member until ``expires_ms``", signed by the
swarm's bootstrap key (the ``issuer``). It is a canonical msgpack map
``{v, peer, name, issued, expires, issuer, sig}``; ``sig`` is Ed25519 by ``issuer`` over
``CERT_CONTEXT + canonical(map without sig)``, so it verifies from the issuer's peer ID alone,
like an envelope. A member presents its certificate in its presence; every node checks it
against the bootstrap it was configured with (``BOOTSTRAP_NODE``) and the clock.

Text form (files, the command line): ``rnetcert1:`` + unpadded base64url of the bytes.

``expires`` 0 means no expiry. Revocation: the bootstrap, which relays everything in a star,
stops relaying for a removed member at once; other nodes honour a certificate until it expires,
so give certificates an expiry when members change often.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import msgpack

from protocol.envelope import canonical
from protocol.errors import MalformedError, OversizeError, SignatureError
from protocol.identity import Signer, is_peer_id, verify
from protocol.messages import MAX_CERT_BYTES

__all__ = [
    "CERT_CONTEXT",
    "CERT_PREFIX",
    "MAX_CERT_BYTES",
    "MemberCert",
    "issue",
]

CERT_CONTEXT = b"rnet-inference/member/v1\x00"
CERT_PREFIX = "rnetcert1:"
CERT_VERSION = 1
MAX_MEMBER_NAME = 64
_FIELDS = frozenset({"v", "peer", "name", "issued", "expires", "issuer", "sig"})


@dataclass(frozen=True, slots=True)
class MemberCert:
    """One signed membership; build with :func:`issue`, read with :meth:`from_bytes`."""

    peer: bytes
    name: str
    issued_ms: int
    expires_ms: int  # 0: never
    issuer: bytes
    sig: bytes

    def _unsigned(self) -> dict[str, object]:
        return {
            "v": CERT_VERSION,
            "peer": self.peer,
            "name": self.name,
            "issued": self.issued_ms,
            "expires": self.expires_ms,
            "issuer": self.issuer,
        }

    def to_bytes(self) -> bytes:
        return canonical({**self._unsigned(), "sig": self.sig})

    def to_text(self) -> str:
        return CERT_PREFIX + base64.urlsafe_b64encode(self.to_bytes()).decode("ascii").rstrip("=")

    @classmethod
    def from_bytes(cls, raw: bytes) -> MemberCert:
        """Decode (shape only; :meth:`check` verifies). MalformedError/OversizeError if bad."""
        if not isinstance(raw, bytes):
            raise MalformedError("certificate is not bytes", field="cert")
        if len(raw) > MAX_CERT_BYTES:
            raise OversizeError(f"{len(raw)} bytes > {MAX_CERT_BYTES}", field="cert")
        try:
            data = msgpack.unpackb(raw, raw=False, strict_map_key=True)
        except Exception as exc:  # msgpack raises many types for bad input
            raise MalformedError(f"certificate is not msgpack: {exc}", field="cert") from None
        if not isinstance(data, dict) or set(data) != _FIELDS:
            raise MalformedError("certificate fields are wrong", field="cert")
        if data["v"] != CERT_VERSION:
            raise MalformedError(f"certificate version {data['v']!r}", field="cert")
        for key in ("peer", "issuer"):
            if not isinstance(data[key], bytes) or not is_peer_id(data[key]):
                raise MalformedError(f"certificate {key} is not a peer id", field="cert")
        name = data["name"]
        if not isinstance(name, str) or len(name) > MAX_MEMBER_NAME:
            raise MalformedError("certificate name is not a short text", field="cert")
        for key in ("issued", "expires"):
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
                raise MalformedError(f"certificate {key} is not a time", field="cert")
        if not isinstance(data["sig"], bytes):
            raise MalformedError("certificate signature is not bytes", field="cert")
        cert = cls(data["peer"], name, data["issued"], data["expires"], data["issuer"], data["sig"])
        if cert.to_bytes() != raw:
            raise MalformedError("certificate is not in canonical form", field="cert")
        return cert

    @classmethod
    def from_text(cls, text: str) -> MemberCert:
        text = text.strip()
        if not text.startswith(CERT_PREFIX):
            raise MalformedError(f"a certificate starts with {CERT_PREFIX!r}", field="cert")
        body = text[len(CERT_PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise MalformedError("certificate is not base64url", field="cert") from None
        return cls.from_bytes(raw)

    def check(self, *, issuer: bytes, peer: bytes | None, now_ms: int) -> None:
        """Raise unless this certifies ``peer`` (if given), was signed by ``issuer`` and has not
        expired at ``now_ms``."""
        if self.issuer != issuer:
            raise SignatureError("certificate from another bootstrap", field="cert")
        if peer is not None and self.peer != peer:
            raise SignatureError("certificate names another peer", field="cert")
        if not verify(issuer, CERT_CONTEXT + canonical(self._unsigned()), self.sig):
            raise SignatureError("certificate signature does not verify", field="cert")
        if self.expires_ms and now_ms >= self.expires_ms:
            raise SignatureError("certificate expired", field="cert")

    def valid(self, *, issuer: bytes, peer: bytes | None, now_ms: int) -> bool:
        try:
            self.check(issuer=issuer, peer=peer, now_ms=now_ms)
        except (SignatureError, MalformedError):
            return False
        return True


def issue(
    signer: Signer, peer: bytes, *, name: str, now_ms: int, expires_ms: int = 0
) -> MemberCert:
    """A certificate for ``peer`` signed by ``signer`` (the bootstrap's key)."""
    if not is_peer_id(peer):
        raise MalformedError("not a peer id", field="peer")
    if len(name) > MAX_MEMBER_NAME:
        raise OversizeError(f"name longer than {MAX_MEMBER_NAME}", field="name")
    if expires_ms and expires_ms <= now_ms:
        raise MalformedError("expiry is in the past", field="expires")
    unsigned = MemberCert(peer, name, now_ms, expires_ms, signer.peer_id, b"")._unsigned()
    sig = signer.sign(CERT_CONTEXT + canonical(unsigned))
    return MemberCert(peer, name, now_ms, expires_ms, signer.peer_id, sig)
