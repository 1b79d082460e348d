"""Gateway settings (``GatewayConfig``), names and the aiohttp application keys."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from node.gateway_settings import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_QUEUE,
    DEFAULT_PROVIDERS,
    DEFAULT_TIMEOUT,
)
from protocol.messages import AGGREGATORS, MAX_PROMPT_CHARS
from protocol.tally import DEFAULT_AGGREGATOR

SWARM_MODEL = "swarm"
# Clients (Open WebUI, oterm) gate features on the Ollama version they talk to: report the API
# level implemented here, and our own version next to it.
OLLAMA_API_VERSION = "0.12.0"
RNET_VERSION = "0.1.0"


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """How each request's session is run and how the server protects itself."""

    providers: int = DEFAULT_PROVIDERS
    timeout_s: float = DEFAULT_TIMEOUT
    aggregator: str = DEFAULT_AGGREGATOR
    token: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY
    # A session's advertisement carries the prompt: the protocol's limit is ours.
    max_prompt_chars: int = MAX_PROMPT_CHARS
    # Least time a streamed reply may hold its headers back to keep a real status code available
    # (the session's join window, when the sessions engine reports it, is used if longer).
    head_start_s: float = 3.0
    # Interval of keep-alive records while a streamed session runs.
    keepalive_s: float = 5.0
    # Extra time past timeout_s before the gateway gives up on a session that did not end itself.
    grace_s: float = 5.0
    # Sessions this gateway leads at once, at most (each floods the mesh and occupies
    # providers); fewer when the swarm's slots allow fewer (node/gateway/queue.py).
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    # Requests that wait for a turn (FIFO) beyond those; more get 503 with Retry-After.
    max_queue: int = DEFAULT_MAX_QUEUE
    # Browser origins allowed beyond the local ones (node.gateway.cors; ``*`` wildcards).
    origins: tuple[str, ...] = ()
    # A request body must arrive whole within this many seconds (a client trickling bytes is
    # cut off with 408 instead of holding a connection open).
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT

    def __post_init__(self) -> None:
        if self.body_timeout_s <= 0:
            raise ValueError("body_timeout_s must be positive")
        if self.providers < 2:
            raise ValueError("providers must be at least 2 (one executor and one verifier)")
        if self.aggregator not in AGGREGATORS:
            raise ValueError(f"unknown aggregator {self.aggregator!r}; one of {AGGREGATORS}")
        if not 0 < self.max_prompt_chars <= MAX_PROMPT_CHARS:
            raise ValueError(f"max_prompt_chars must be in 1..{MAX_PROMPT_CHARS}")
        if self.timeout_s <= 0:
            raise ValueError("timeout must be positive")
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if self.max_queue < 0:
            raise ValueError("the queue must hold 0 or more requests")
        if self.max_body_bytes < 1024:
            raise ValueError("max_body_bytes must be at least 1024")
        if self.token is not None and not self.token.strip():
            raise ValueError("token must not be empty")


CONFIG_KEY: web.AppKey[GatewayConfig] = web.AppKey("rnet_gateway_config", GatewayConfig)
SESSIONS_KEY: web.AppKey[Any] = web.AppKey("rnet_gateway_sessions", object)


@dataclass(slots=True)
class GatewayState:
    """What one running gateway tracks: its sessions in flight, and whether it is closing."""

    in_flight: set[asyncio.Task[Any]] = field(default_factory=set)
    closing: bool = False
    queue: Any = None  # the SessionQueue (node/gateway/queue.py) requests wait in


STATE_KEY: web.AppKey[GatewayState] = web.AppKey("rnet_gateway_state", GatewayState)
