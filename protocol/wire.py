"""Wire plumbing shared by every message body: limits, field validators, the body base.

Validators raise :class:`~protocol.errors.ProtocolError` subclasses naming the field they reject.
Bodies (in :mod:`protocol.messages` and :mod:`protocol.result`) are frozen slotted dataclasses
built on :class:`BodyBase`; a body that exists is valid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from typing import Any, ClassVar

from protocol.errors import MalformedError, OversizeError, RangeError
from protocol.generation import GenOptions
from protocol.identity import is_peer_id

# --- limits (characters for text; counts for lists) -------------------------------------------
MAX_PROMPT_CHARS = 8_192
MAX_RESPONSE_CHARS = 16_384
MAX_REASON_CHARS = 512
MAX_NAME_CHARS = 128  # model, backend, node names
MAX_PARTICIPANTS = 64  # executors + verifiers of one session (the result matrix grows as n^2)
MAX_PARAMS = 16
MAX_ADDRS = 16
MAX_ADDR_CHARS = 256
MAX_MESH_TOPICS = 256
MAX_MESH_PEERS = 1_024
MAX_TOPIC_CHARS = 128
MAX_SLOTS = 256  # model slots one provider may announce
MAX_CERT_BYTES = 512  # a membership certificate (protocol.membership)
MAX_STAGE_MS = 3_600_000  # one hour: any longer is a typo, not a deadline
MAX_GEN_MS = 24 * 3_600_000
# A result carries a response text plus an n^2 score matrix; 256 KiB holds MAX_PARTICIPANTS.
MAX_ENVELOPE_BYTES = 256 * 1024

MIN_SCORE = 0.0
MAX_SCORE = 0.99

MESH_TOPIC = "swarm/mesh"
AGGREGATORS = ("robust", "mean", "median", "trimmed")
PRESENCE_ROLES = ("provider", "bootstrap")

# Session deadlines (durations, ms): the one definition, used by the node's SessionOptions too.
DEFAULT_JOIN_MS = 10_000
DEFAULT_EXEC_MS = 60_000
DEFAULT_VERIFY_MS = 60_000


# --- validators: each names the field it rejects ----------------------------------------------
def type_error(name: str, expected: str, value: object) -> MalformedError:
    return MalformedError(
        f"expected {expected}, got {type(value).__name__}", field=name, reason="bad_type"
    )


def check_text(name: str, value: object, max_chars: int, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise type_error(name, "str", value)
    if len(value) > max_chars:
        raise OversizeError(f"{len(value)} chars > {max_chars}", field=name)
    if not empty and not value.strip():
        raise RangeError("must not be empty", field=name)
    return value


def check_int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise type_error(name, "int", value)
    if not lo <= value <= hi:
        raise RangeError(f"{value} not in [{lo}, {hi}]", field=name)
    return value


def check_score(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise type_error(name, "float", value)
    value = float(value)
    if math.isnan(value) or not MIN_SCORE <= value <= MAX_SCORE:
        raise RangeError(f"{value} not in [{MIN_SCORE:.2f}, {MAX_SCORE:.2f}]", field=name)
    return value


def check_opt_score(name: str, value: object) -> float | None:
    return None if value is None else check_score(name, value)


def check_peer(name: str, value: object) -> bytes:
    if not isinstance(value, bytes):
        raise type_error(name, "peer-id bytes", value)
    if not is_peer_id(value):
        raise RangeError("not an Ed25519 peer ID", field=name)
    return value


def check_peers(
    name: str, value: object, max_items: int, *, empty: bool = False
) -> tuple[bytes, ...]:
    if not isinstance(value, list | tuple):
        raise type_error(name, "list", value)
    if len(value) > max_items:
        raise OversizeError(f"{len(value)} entries > {max_items}", field=name)
    out = tuple(check_peer(f"{name}[{i}]", v) for i, v in enumerate(value))
    if len(set(out)) != len(out):
        raise RangeError("duplicate peer", field=name)
    if not empty and not out:
        raise RangeError("must not be empty", field=name)
    return out


def check_map(name: str, value: object, max_items: int) -> dict[Any, Any]:
    if not isinstance(value, Mapping):
        raise type_error(name, "map", value)
    if len(value) > max_items:
        raise OversizeError(f"{len(value)} entries > {max_items}", field=name)
    return dict(value)


def set_field(obj: object, name: str, value: object) -> None:
    # frozen dataclasses normalise their own fields (list -> tuple, int -> float) in __post_init__
    object.__setattr__(obj, name, value)


def wire_fields(cls: type, data: object) -> dict[str, Any]:
    """Strict field presence check shared by every ``from_wire``."""
    if not isinstance(data, Mapping):
        raise type_error("body", "map", data)
    names = {f.name for f in fields(cls)}
    for key in data:
        if key not in names:
            raise MalformedError(f"unknown field {key!r}", field=str(key), reason="unknown_field")
    for name in (f.name for f in fields(cls)):  # declaration order: the first missing is named
        if name not in data:
            raise MalformedError("missing field", field=name, reason="missing_field")
    return dict(data)


class BodyBase:
    """Shared plumbing; subclasses are frozen slotted dataclasses with a ``KIND``."""

    __slots__ = ()
    KIND: ClassVar[str]

    def to_wire(self) -> dict[str, Any]:
        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_wire(cls, data: object) -> Any:
        return cls(**wire_fields(cls, data))


def plain(value: Any) -> Any:
    """Dataclass field value -> msgpack-able (tuples become lists, nested bodies dicts)."""
    if isinstance(value, BodyBase | GenOptions):
        return value.to_wire()
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


DIGEST_BYTES = 32  # sha256 of a signed statement (see protocol.envelope.statement_digest)
MAX_LABEL_CHARS = 3
MAX_ITEMS = 2 * MAX_PARTICIPANTS  # answers plus canaries judged in one session


def check_digest(name: str, value: object) -> bytes:
    if not isinstance(value, bytes):
        raise type_error(name, "digest bytes", value)
    if len(value) != DIGEST_BYTES:
        raise RangeError(f"{len(value)} bytes, a digest has {DIGEST_BYTES}", field=name)
    return value


def label_name(index: int) -> str:
    """The ``index``-th blind label: A..Z, then AA, AB, ... (spreadsheet columns)."""
    if index < 0:
        raise ValueError("label index must be >= 0")
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def check_label(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise type_error(name, "label str", value)
    if not (1 <= len(value) <= MAX_LABEL_CHARS and value.isascii() and value.isupper()):
        raise RangeError(f"{value[:8]!r} is not a label (1-3 capital letters)", field=name)
    if not value.isalpha():
        raise RangeError(f"{value[:8]!r} is not a label (1-3 capital letters)", field=name)
    return value
