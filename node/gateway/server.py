"""Binding the gateway: listen addresses, the loopback-or-token rule, the running handle."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web

from node.gateway.app import make_app
from node.gateway.config import STATE_KEY, GatewayConfig
from node.gateway.swarm import SwarmSessions
from node.gateway_settings import DEFAULT_LISTEN, check_exposure, parse_listen

log = logging.getLogger(__name__)


@dataclass(slots=True)
class GatewayHandle:
    """A running gateway: its base URL, and ``await close()`` to stop it."""

    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        """Stop sessions in flight (their requests get a 503), then stop serving."""
        state = self.runner.app[STATE_KEY]
        state.closing = True
        for task in list(state.in_flight):
            task.cancel()
        await self.runner.cleanup()


async def serve_swarm(
    sessions: SwarmSessions, listen: str = DEFAULT_LISTEN, config: GatewayConfig | None = None
) -> GatewayHandle:
    """Bind ``listen`` and serve ``sessions`` on the running asyncio loop until ``close()``.

    Raises ValueError for a bad address or a non-loopback address without a token, OSError when
    the port cannot be bound.
    """
    config = config or GatewayConfig()
    host, port = parse_listen(listen)
    check_exposure(host, config.token)
    # handler_cancellation: a client that hangs up cancels its handler and thereby its session.
    runner = web.AppRunner(
        make_app(sessions, config),
        handler_cancellation=True,
        shutdown_timeout=2.0,
        access_log=None,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    # With port 0 the OS picked one: report the bound address, not the requested one.
    bound = next((addr[1] for addr in runner.addresses if isinstance(addr, tuple)), port)
    handle = GatewayHandle(runner=runner, host=host, port=bound)
    log.info("gateway: serving Ollama and OpenAI APIs at %s", handle.url)
    return handle
