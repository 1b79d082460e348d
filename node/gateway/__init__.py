"""The swarm as an Ollama- and OpenAI-compatible HTTP endpoint (aiohttp, asyncio side of the bridge).

Theory of operation: every completion request becomes one swarm session run as leader through a
narrow :class:`SwarmSessions` interface (``run(prompt, ...) -> SwarmResult``). The swarm produces
the whole answer at once, so a streamed reply is the final text cut into word-sized chunks.

Status codes matter to clients, but so do early bytes (clients and proxies time out on silent
connections). A streamed reply therefore holds its headers back only until the session has its
participants (the ``on_stage`` callback reports a stage past joining) or its join window elapses,
whichever comes first: "not enough providers" and other early failures still get a real 503;
anything that fails later is reported inside the stream in the API's own error shape. While the
session runs, keep-alive records (an empty Ollama chunk / an SSE comment) keep the line warm.

A request that disconnects cancels its handler (``handler_cancellation=True``), and the handler
cancels its session: parallel requests each own one session task, nothing is shared.

Modules: ``swarm`` (the interface), ``config`` (settings), ``requests`` (parsing), ``params``
(generation fields of both APIs: honoured, refused or named as ignored), ``replies`` (response
shapes, tool calls, counts), ``answer`` (one session per request), ``cors`` (browser origins),
``app`` (routes, middleware), ``server`` (binding), ``adapter`` (the real node).

Public API: :func:`make_app` (the aiohttp application), :func:`serve_swarm` (bind and serve a
:class:`SwarmSessions`), :func:`start_gateway` (the ``rnet node --serve ADDR`` hook: wraps a
running ``NodeRuntime``), :class:`GatewayHandle` (``url``, ``port``, ``await close()``).
"""

from node.gateway.adapter import RuntimeSwarm, start_gateway
from node.gateway.app import make_app
from node.gateway.config import SWARM_MODEL, GatewayConfig
from node.gateway.errors import ApiError, error_body
from node.gateway.replies import split_text
from node.gateway.requests import render_chat
from node.gateway.server import (
    GatewayHandle,
    serve_swarm,
)
from node.gateway.swarm import StageCallback, SwarmResult, SwarmSessions, SwarmUnavailable
from node.gateway_settings import DEFAULT_LISTEN, check_exposure, is_loopback, parse_listen

__all__ = [
    "DEFAULT_LISTEN",
    "SWARM_MODEL",
    "ApiError",
    "GatewayConfig",
    "GatewayHandle",
    "RuntimeSwarm",
    "StageCallback",
    "SwarmResult",
    "SwarmSessions",
    "SwarmUnavailable",
    "check_exposure",
    "error_body",
    "is_loopback",
    "make_app",
    "parse_listen",
    "render_chat",
    "serve_swarm",
    "split_text",
    "start_gateway",
]
