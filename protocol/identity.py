"""Peer identity without libp2p: Ed25519 peer IDs, base58, signing and verification.

A libp2p Ed25519 peer ID is the *identity* multihash of the protobuf-encoded public key::

    00 24 | 08 01 | 12 20 | <32-byte Ed25519 public key>
    ^mh id,len 36  ^KeyType=Ed25519  ^field 2, 32 bytes

so the public key is inlined and any signature can be verified from the peer ID alone. This
module only uses PyNaCl (which libp2p's own Ed25519 keys wrap), so ``protocol`` stays free of
libp2p; a test checks that our IDs equal libp2p's byte for byte.
"""

from __future__ import annotations

import functools
import logging
from typing import Protocol, runtime_checkable

import nacl.exceptions
import nacl.signing

from protocol.errors import IdentityError

__all__ = [
    "ED25519_PEER_ID_PREFIX",
    "PEER_ID_LEN",
    "NaclSigner",
    "Signer",
    "b58decode",
    "b58encode",
    "is_peer_id",
    "peer_id_from_public_key",
    "peer_id_from_str",
    "peer_id_to_str",
    "public_key_from_peer_id",
    "short_id",
    "verify",
]

logger = logging.getLogger(__name__)

# identity multihash (code 0x00, length 36) of protobuf PublicKey{Type=Ed25519(1), Data=32 bytes}
ED25519_PEER_ID_PREFIX = bytes([0x00, 0x24, 0x08, 0x01, 0x12, 0x20])
PEER_ID_LEN = len(ED25519_PEER_ID_PREFIX) + 32
SHORT_ID_CHARS = 6

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}
# Peer IDs are ~52 chars; the cap keeps hostile input from costing a big-int conversion.
_MAX_B58_CHARS = 128


def b58encode(data: bytes) -> str:
    """Bitcoin-alphabet base58 (what libp2p uses for peer IDs)."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, rem = divmod(n, 58)
        out.append(_B58_ALPHABET[rem])
    return "1" * zeros + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """Inverse of :func:`b58encode`; raises :class:`IdentityError` on bad characters."""
    if not isinstance(text, str):
        raise IdentityError(f"expected text, got {type(text).__name__}")
    if len(text) > _MAX_B58_CHARS:
        raise IdentityError(f"base58 text too long ({len(text)} chars)")
    n = 0
    for ch in text:
        try:
            n = n * 58 + _B58_INDEX[ch]
        except KeyError:
            raise IdentityError(f"not base58: {ch!r} in {text!r}") from None
    zeros = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * zeros + body


def is_peer_id(value: object) -> bool:
    """True for bytes shaped like an Ed25519 libp2p peer ID."""
    return (
        isinstance(value, bytes)
        and len(value) == PEER_ID_LEN
        and value.startswith(ED25519_PEER_ID_PREFIX)
    )


def peer_id_from_public_key(public_key: bytes) -> bytes:
    """Peer-ID bytes for a raw 32-byte Ed25519 public key."""
    if not isinstance(public_key, bytes) or len(public_key) != 32:
        raise IdentityError("an Ed25519 public key is 32 bytes")
    return ED25519_PEER_ID_PREFIX + public_key


def public_key_from_peer_id(peer_id: bytes) -> bytes:
    """The 32-byte Ed25519 public key inlined in ``peer_id``."""
    if not is_peer_id(peer_id):
        raise IdentityError("not an Ed25519 libp2p peer ID (expected 00 24 08 01 12 20 + 32 bytes)")
    return peer_id[len(ED25519_PEER_ID_PREFIX) :]


def peer_id_to_str(peer_id: bytes) -> str:
    """Base58 text form, as libp2p prints it (``12D3KooW...``).

    Cached: a swarm has few peers and every session event names each of them many times
    (pure-Python base58 of 38 bytes costs ~50 us; measured ~5% of a provider's CPU uncached).
    """
    if type(peer_id) is bytes:
        return _peer_id_to_str_cached(peer_id)
    return b58encode(bytes(peer_id))


@functools.lru_cache(maxsize=4096)
def _peer_id_to_str_cached(peer_id: bytes) -> str:
    return b58encode(peer_id)


def peer_id_from_str(text: str) -> bytes:
    """Parse the base58 form; only Ed25519 peer IDs are accepted (the swarm uses no others)."""
    raw = b58decode(text.strip()) if isinstance(text, str) else b58decode(text)
    if not is_peer_id(raw):
        raise IdentityError(f"not an Ed25519 peer ID: {text!r}")
    return raw


def short_id(peer_id: bytes | str) -> str:
    """Last six characters of the base58 form: what tables and logs show."""
    text = peer_id if isinstance(peer_id, str) else peer_id_to_str(peer_id)
    return text[-SHORT_ID_CHARS:]


def verify(peer_id: bytes, data: bytes, signature: bytes) -> bool:
    """Check an Ed25519 signature using only the sender's peer ID. Never raises."""
    if not is_peer_id(peer_id) or not isinstance(signature, bytes) or len(signature) != 64:
        return False
    if not isinstance(data, bytes):
        return False
    try:
        key = nacl.signing.VerifyKey(public_key_from_peer_id(peer_id))
        key.verify(data, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError):
        return False
    return True


@runtime_checkable
class Signer(Protocol):
    """What ``seal()`` needs: the peer-ID bytes and a detached Ed25519 signature."""

    @property
    def peer_id(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes: ...


class NaclSigner:
    """A :class:`Signer` from a 32-byte seed, using PyNaCl directly.

    Same key and peer ID as ``libp2p.crypto.ed25519.create_new_key_pair(seed)``.
    """

    __slots__ = ("_key", "_peer_id")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != 32:
            raise IdentityError("an Ed25519 seed is 32 bytes")
        self._key = nacl.signing.SigningKey(seed)
        self._peer_id = peer_id_from_public_key(bytes(self._key.verify_key))

    @classmethod
    def generate(cls) -> NaclSigner:
        """A fresh random key (OS randomness)."""
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @property
    def peer_id(self) -> bytes:
        return self._peer_id

    @property
    def public_key(self) -> bytes:
        return bytes(self._key.verify_key)

    @property
    def seed(self) -> bytes:
        return bytes(self._key)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data).signature

    def __repr__(self) -> str:
        return f"NaclSigner({short_id(self._peer_id)})"
