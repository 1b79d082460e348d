"""The gateway in front of a real local swarm: bootstrap + providers + ``rnet serve``, all real
processes on loopback with the ``sim`` backend, driven by the official ollama and openai clients.

One swarm per module (processes are the expensive part on a shared 2-core machine); waits are
conditions with generous deadlines.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.node.swarm import NodeProc, Swarm

pytestmark = pytest.mark.slow

PROVIDERS = 3


@dataclass
class LiveSwarm:
    swarm: Swarm
    providers: list[NodeProc]
    gateway: NodeProc
    url: str


def start_gateway_node(swarm: Swarm, *args: str) -> tuple[NodeProc, str]:
    node = swarm.spawn("serve", "gateway", ["--listen", "127.0.0.1:0", *args])
    announced = node.wait_event("gateway", timeout=60)
    return node, announced["url"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSwarm]:
    workdir: Path = tmp_path_factory.mktemp("gateway-swarm")
    with Swarm(workdir) as swarm:
        swarm.start_bootstrap(timeout=60)
        providers = swarm.start_providers(PROVIDERS, timeout=60)
        gateway, url = start_gateway_node(
            swarm, "--providers", str(PROVIDERS), "--timeout", "30"
        )
        yield LiveSwarm(swarm, providers, gateway, url)


def wait_http(condition, timeout: float = 60.0, what: str = "") -> None:
    """Re-check an HTTP-observable condition until it holds (bounded)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last error: {last})")


def test_tags_list_swarm_and_provider_models(live: LiveSwarm) -> None:
    def providers_listed() -> bool:
        models = httpx.get(f"{live.url}/api/tags", timeout=10).json()["models"]
        peers = {p for m in models for p in m.get("swarm", {}).get("providers", [])}
        return models[0]["name"] == "swarm" and peers >= {p.peer_id for p in live.providers}

    wait_http(providers_listed, what="all providers' models in /api/tags")
    version = httpx.get(f"{live.url}/api/version", timeout=10).json()
    assert version["rnet_version"]
