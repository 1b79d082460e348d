"""Bodies of the mesh (``swarm/mesh``), not of a session: presence and the hub's mesh view."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from protocol.errors import OversizeError, RangeError
from protocol.generation import check_capabilities
from protocol.wire import (
    MAX_ADDR_CHARS,
    MAX_ADDRS,
    MAX_CERT_BYTES,
    MAX_MESH_PEERS,
    MAX_MESH_TOPICS,
    MAX_NAME_CHARS,
    MAX_SLOTS,
    MAX_TOPIC_CHARS,
    PRESENCE_ROLES,
    BodyBase,
    check_int,
    check_map,
    check_peers,
    check_text,
    set_field,
    type_error,
    wire_fields,
)

__all__ = ["Bootmesh", "Presence"]


@dataclass(frozen=True, slots=True)
class Presence(BodyBase):
    """Any node -> ``swarm/mesh``: who I am and what I run. ``status`` is empty while the node
    can take executor and verifier roles, else why it cannot (its model does not answer): it
    still relays and leads."""

    KIND: ClassVar[str] = "presence"
    name: str
    role: str = "provider"
    model: str = ""
    backend: str = ""
    addrs: tuple[str, ...] = ()
    status: str = ""
    # model slots offered and in use (protocol/capacity.py); 0/0 on nodes that run no model
    slots: int = 0
    slots_used: int = 0
    capabilities: tuple[str, ...] = ()  # issue 17: what the backend can do (tools, json)
    # a membership certificate from the bootstrap (protocol.membership), b"" in an open swarm
    cert: bytes = b""

    def to_wire(self) -> dict[str, Any]:
        # without a certificate the wire form is the one nodes before closed swarms send
        wire = BodyBase.to_wire(self)
        if not self.cert:
            del wire["cert"]
        return wire

    @classmethod
    def from_wire(cls, data: object) -> Any:
        if isinstance(data, Mapping) and "cert" not in data:
            data = {**data, "cert": b""}
        return cls(**wire_fields(cls, data))

    def __post_init__(self) -> None:
        set_field(self, "capabilities", check_capabilities(self.capabilities))
        if not isinstance(self.cert, bytes):
            raise type_error("cert", "bytes", self.cert)
        if len(self.cert) > MAX_CERT_BYTES:
            raise OversizeError(f"{len(self.cert)} bytes > {MAX_CERT_BYTES}", field="cert")
        check_text("name", self.name, MAX_NAME_CHARS)
        for name in ("slots", "slots_used"):
            check_int(name, getattr(self, name), 0, MAX_SLOTS)
        if self.role not in PRESENCE_ROLES:
            raise RangeError(f"{self.role!r} not one of {PRESENCE_ROLES}", field="role")
        check_text("model", self.model, MAX_NAME_CHARS)
        check_text("backend", self.backend, MAX_NAME_CHARS)
        check_text("status", self.status, MAX_NAME_CHARS)
        if not isinstance(self.addrs, list | tuple):
            raise type_error("addrs", "list", self.addrs)
        if len(self.addrs) > MAX_ADDRS:
            raise OversizeError(f"more than {MAX_ADDRS} addresses", field="addrs")
        set_field(
            self,
            "addrs",
            tuple(check_text(f"addrs[{i}]", a, MAX_ADDR_CHARS) for i, a in enumerate(self.addrs)),
        )


@dataclass(frozen=True, slots=True)
class Bootmesh(BodyBase):
    """Bootstrap -> ``swarm/mesh``: its view of topic -> subscribed peers."""

    KIND: ClassVar[str] = "bootmesh"
    topics: Mapping[str, tuple[bytes, ...]]

    def __post_init__(self) -> None:
        topics = check_map("topics", self.topics, MAX_MESH_TOPICS)
        for topic in list(topics):
            check_text("topics.<key>", topic, MAX_TOPIC_CHARS, empty=False)
            topics[topic] = check_peers(
                f"topics.{topic}", topics[topic], MAX_MESH_PEERS, empty=True
            )
        set_field(self, "topics", topics)
