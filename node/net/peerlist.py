"""``/rnet/peers/1.0.0``: the bootstrap answers with the peers it sees and its topic map.

A JSON request/response over py-libp2p's public ``RequestResponse``; the reply is checked field
by field by the provider role (it comes from the network).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from libp2p.abc import IHost
from libp2p.request_response import JSONCodec, RequestResponse, RequestResponseConfig
from libp2p.request_response.api import RequestContext

from node.errors import HostError
from node.net.addrs import parse_peer_id
from node.net.links import brief_error

PEERS_PROTOCOL = "/rnet/peers/1.0.0"
# JSON in, JSON out: what the bootstrap sends (peers, topics) and what a provider receives.
PeerList = dict[str, Any]


class PeerListProtocol:
    def __init__(self, host: IHost) -> None:
        self._rr = RequestResponse(host)

    def serve(self, produce: Callable[[str], PeerList]) -> None:
        """Bootstrap: answer every request with ``produce(the requester's peer ID)``."""

        async def handler(request: object, context: RequestContext) -> PeerList:
            return produce(context.peer_id.to_base58())

        self._rr.set_handler(
            PEERS_PROTOCOL, handler, JSONCodec(), RequestResponseConfig(timeout=5.0)
        )

    async def request(self, peer: str, *, timeout: float = 5.0) -> object:
        """Provider: ask ``peer`` (the bootstrap) for its list. HostError on failure."""
        try:
            return await self._rr.send_request(
                parse_peer_id(peer),
                [PEERS_PROTOCOL],
                {"want": "peers"},
                JSONCodec(),
                RequestResponseConfig(timeout=timeout),
            )
        except Exception as exc:
            raise HostError(f"peer list from {peer[-6:]} failed: {brief_error(exc)}") from exc
