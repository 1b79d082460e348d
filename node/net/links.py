"""What the host hands out and takes in: received messages, connection notifications."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from libp2p.abc import INetConn, INetStream, INetwork
from libp2p.peer.id import ID
from multiaddr import Multiaddr


@dataclass(frozen=True, slots=True)
class PubsubMessage:
    """One received pubsub message, copied out of libp2p's protobuf."""

    topic: str
    data: bytes
    from_id: bytes  # the pubsub-level origin (verified by libp2p's strict signing)
    sender: str  # base58 of from_id
    seqno: bytes


TopicHandler = Callable[[PubsubMessage], Awaitable[None]]


class Notifee:
    """INotifee: connection changes -> a callback with the peer id."""

    def __init__(self, on_change: Callable[[ID, str], None]) -> None:
        self._on_change = on_change

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._on_change(conn.muxed_conn.peer_id, "connected")

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._on_change(conn.muxed_conn.peer_id, "disconnected")

    async def listen(self, network: INetwork, multiaddr: Multiaddr) -> None:
        pass

    async def listen_close(self, network: INetwork, multiaddr: Multiaddr) -> None:
        pass


async def quiet(awaitable: Awaitable[object]) -> None:
    try:
        await awaitable
    except Exception:
        pass


def brief_error(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(brief_error(e) for e in exc.exceptions)
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."
