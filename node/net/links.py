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
    """INotifee: connection changes -> a callback with the peer id and the connection."""

    def __init__(self, on_change: Callable[[ID, str, INetConn], None]) -> None:
        self._on_change = on_change

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._on_change(conn.muxed_conn.peer_id, "connected", conn)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._on_change(conn.muxed_conn.peer_id, "disconnected", conn)

    async def listen(self, network: INetwork, multiaddr: Multiaddr) -> None:
        pass

    async def listen_close(self, network: INetwork, multiaddr: Multiaddr) -> None:
        pass


async def quiet(awaitable: Awaitable[object]) -> None:
    try:
        await awaitable
    except Exception:
        pass


_MISMATCH_MARK = "remote_peer_id_from_pubkey="


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and everything behind it: causes, contexts, groups and libp2p's ``MultiError``
    (which carries its exceptions as a list argument)."""
    seen: set[int] = set()
    out: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        out.append(e)
        todo += [c for c in (e.__cause__, e.__context__) if c is not None]
        if isinstance(e, BaseExceptionGroup):
            todo += list(e.exceptions)
        for arg in e.args:
            if isinstance(arg, BaseException):
                todo.append(arg)
            elif isinstance(arg, list | tuple):
                todo += [a for a in arg if isinstance(a, BaseException)]
    return out


def mismatched_peer_id(exc: BaseException) -> str | None:
    """The peer ID the remote proved in the noise handshake, when a dial failed because it is
    not the one dialed (libp2p's ``PeerIDMismatchesPubkey``, several causes deep)."""
    for e in _causes(exc):
        text = str(e)
        if type(e).__name__ == "PeerIDMismatchesPubkey" and _MISMATCH_MARK in text:
            return text.split(_MISMATCH_MARK, 1)[1].split(",")[0].split()[0].strip()
    return None


def dial_failure(exc: BaseException) -> str:
    """Why a dial failed, in a few words: the operating system's reason when there is one
    (connection refused, no route to host), else libp2p's message."""
    for e in _causes(exc):
        if isinstance(e, OSError) and e.strerror:
            return e.strerror.lower()
    return brief_error(exc)


def brief_error(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(brief_error(e) for e in exc.exceptions)
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."
