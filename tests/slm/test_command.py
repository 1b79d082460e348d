"""The interpreter's ``slm`` command streams ``slm_chunk`` events and returns the whole answer."""

from __future__ import annotations

from node.commands import Interpreter
from node.commands.slm import register_slm_command
from node.events import Event, SlmChunk
from node.slm.ollama_backend import OllamaBackend
from node.slm.sim import SimBackend


class FakeRuntime:
    """What a handler uses of the runtime: ``emit`` (and ``interpreter`` for ``help``)."""

    def __init__(self, interpreter: Interpreter) -> None:
        self.interpreter = interpreter
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


def _setup(backend: object) -> tuple[Interpreter, FakeRuntime]:
    interpreter = Interpreter()
    register_slm_command(interpreter, backend)  # type: ignore[arg-type]
    return interpreter, FakeRuntime(interpreter)


async def test_slm_streams_chunks_then_done() -> None:
    interpreter, runtime = _setup(SimBackend(name="alice"))
    outcome = await interpreter.execute(runtime, "slm What is 2+2?")
    assert outcome.ok
    assert outcome.text == "[simulated sim/honest@alice] The answer is 4."
    chunks = [e for e in runtime.events if isinstance(e, SlmChunk)]
    assert len(chunks) > 2
    assert chunks[-1] == SlmChunk(text="", done=True)
    assert all(not c.done for c in chunks[:-1])
    assert "".join(c.text for c in chunks) == outcome.text
    assert chunks[0].to_dict()["event"] == "slm_chunk"


async def test_slm_without_prompt_is_a_usage_error() -> None:
    interpreter, runtime = _setup(SimBackend(name="alice"))
    outcome = await interpreter.execute(runtime, "slm")
    assert not outcome.ok
    assert outcome.text == "usage: slm <prompt>"
    assert "slm <prompt>" in interpreter.help_text()


async def test_slm_model_failure_is_a_one_line_error_and_ends_the_stream(closed_port: int) -> None:
    backend = OllamaBackend(name="n", host=f"127.0.0.1:{closed_port}", timeout_gen=5)
    interpreter, runtime = _setup(backend)
    outcome = await interpreter.execute(runtime, 'slm "hello there"')
    assert not outcome.ok
    assert outcome.text.startswith("slm: Ollama is not reachable at")
    assert "\n" not in outcome.text
    assert runtime.events == [SlmChunk(text="", done=True)]
    await backend.aclose()
