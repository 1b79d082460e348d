"""Fixtures: an Ollama test double on a free port and an Ollama backend pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from node.localswarm import free_port
from node.slm.ollama_backend import OllamaBackend
from tests.ollama_double import OllamaDouble

MODEL = "qwen2.5:1.5b"


@pytest.fixture
async def double() -> AsyncIterator[OllamaDouble]:
    async with OllamaDouble(models=[MODEL]) as d:
        yield d


@pytest.fixture
async def backend(double: OllamaDouble) -> AsyncIterator[OllamaBackend]:
    b = OllamaBackend(name="tester", model=MODEL, host=double.url, timeout_gen=10, timeout_judge=10)
    yield b
    await b.aclose()


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    return free_port()
