"""The one error family of the protocol core.

Every way a message can be wrong maps to a :class:`ProtocolError` subclass carrying a short,
stable ``reason`` code (used in ``rejected`` events, counters and logs) and the ``field`` that
was wrong, if any. Decoding never raises anything else: callers catch ``ProtocolError`` and
count/log it, they never crash on hostile input.
"""

from __future__ import annotations

__all__ = [
    "IdentityError",
    "MalformedError",
    "OversizeError",
    "ProtocolError",
    "RangeError",
    "ReplayError",
    "SenderMismatchError",
    "SignatureError",
    "StateError",
    "UnknownKindError",
    "VersionError",
]


class ProtocolError(Exception):
    """Base of every protocol failure.

    ``reason`` is a short machine-readable code ("bad_signature", "oversize", ...);
    ``field`` names the offending field (``"body.score"``) or is ``None``.
    """

    reason: str = "protocol_error"

    def __init__(self, message: str, *, field: str | None = None, reason: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if reason is not None:
            self.reason = reason

    def __str__(self) -> str:
        where = f" [{self.field}]" if self.field else ""
        return f"{self.reason}{where}: {self.message}"


class MalformedError(ProtocolError):
    """Not msgpack, wrong types, missing or unknown fields, non-canonical encoding."""

    reason = "malformed"


class VersionError(ProtocolError):
    """The envelope's ``v`` is not a version this code speaks."""

    reason = "unknown_version"


class UnknownKindError(ProtocolError):
    """The envelope's ``kind`` is not one of the known body kinds."""

    reason = "unknown_kind"


class RangeError(ProtocolError):
    """A value of the right type outside its allowed range (score > 0.99, NaN, negative ms)."""

    reason = "out_of_range"


class OversizeError(ProtocolError):
    """The envelope or one of its fields exceeds a size limit."""

    reason = "oversize"


class IdentityError(ProtocolError):
    """Bytes or text that are not an Ed25519 libp2p peer ID."""

    reason = "bad_peer_id"


class SignatureError(ProtocolError):
    """The signature does not verify against the sender's peer ID."""

    reason = "bad_signature"


class SenderMismatchError(ProtocolError):
    """The envelope's ``from`` differs from the transport-level sender."""

    reason = "sender_mismatch"


class ReplayError(ProtocolError):
    """A ``(from, seq)`` pair already seen (or older than the guard's window)."""

    reason = "replay"


class StateError(ProtocolError):
    """An operator action that the session's current state does not allow (ack too early...)."""

    reason = "bad_state"
