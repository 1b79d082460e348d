"""Backends use anyio, so a trio caller (the libp2p side) can use them directly too."""

from __future__ import annotations

import time

import pytest
import trio

from node.slm.base import SLMError
from node.slm.ollama_backend import OllamaBackend
from node.slm.sim import SimBackend
from tests.ollama_double import OllamaDouble, Reply

MODEL = "qwen2.5:1.5b"


def test_backends_under_trio() -> None:
    async def main(double: OllamaDouble) -> None:
        sim = SimBackend(name="a", gen_ms=5)
        assert (await sim.generate("What is 2+2?")).text.endswith("The answer is 4.")
        backend = OllamaBackend(name="t", host=double.url, timeout_gen=0.5)
        try:
            await backend.check()
            assert (await backend.generate("hi")).text == f"{MODEL} answers: hi"
            assert "".join([c async for c in backend.generate_stream("hi")]).endswith("hi")
            assert (await backend.judge("q", "a")).score == 0.8
            double.script(MODEL, Reply(delay_s=30))
            started = time.monotonic()
            with pytest.raises(SLMError, match="did not answer"):
                await backend.generate("slow")
            assert time.monotonic() - started < 3.5
        finally:
            await backend.aclose()

    with OllamaDouble(models=[MODEL]).in_thread() as double:
        trio.run(main, double)
