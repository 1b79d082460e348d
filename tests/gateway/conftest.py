"""Fixtures: a real gateway server on an ephemeral loopback port in front of the fake swarm."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from node.gateway import GatewayConfig, GatewayHandle, serve_swarm
from tests.gateway.fake import FakeSwarm


@dataclass
class Served:
    handle: GatewayHandle
    fake: FakeSwarm

    @property
    def url(self) -> str:
        return self.handle.url


@pytest.fixture
async def start() -> AsyncIterator[Callable[..., Awaitable[Served]]]:
    """Start a gateway with a given config (several per test allowed); all closed at the end."""
    handles: list[GatewayHandle] = []

    async def _start(fake: FakeSwarm | None = None, **config: object) -> Served:
        fake = fake or FakeSwarm()
        listen = str(config.pop("listen", "127.0.0.1:0"))
        handle = await serve_swarm(fake, listen, GatewayConfig(**config))  # type: ignore[arg-type]
        handles.append(handle)
        return Served(handle, fake)

    yield _start
    for handle in handles:
        await handle.close()


@pytest.fixture
async def served(start: Callable[..., Awaitable[Served]]) -> Served:
    return await start()
