"""The interpreter's ``slm <prompt>`` command: ask this node's model, streaming the answer.

While the answer streams, each chunk goes out as an ``slm_chunk`` event (``done=False``), then one
``slm_chunk(text="", done=True)`` ends it (also after a failure, so a console can close its live
line). The command's own output (the ``command_output`` event) is the whole answer, so headless
logs and the console's history hold it in one piece.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from node.commands.interpreter import CommandError, Interpreter
from node.events import SlmChunk
from node.slm.base import Backend, SLMError

if TYPE_CHECKING:
    from node.runtime.node import NodeRuntime

log = logging.getLogger(__name__)

USAGE = "slm <prompt>"


def register_slm_command(interpreter: Interpreter, backend: Backend) -> None:
    """Register ``slm`` on ``interpreter``, answering with ``backend``. The handler runs on the
    asyncio side and emits through ``runtime.emit`` (the runtime passed to every handler)."""

    async def slm(runtime: NodeRuntime, args: list[str]) -> str:
        prompt = " ".join(args).strip()
        if not prompt:
            raise CommandError(f"usage: {USAGE}")
        parts: list[str] = []
        try:
            async with contextlib.aclosing(backend.generate_stream(prompt)) as chunks:
                async for chunk in chunks:
                    parts.append(chunk)
                    runtime.emit(SlmChunk(text=chunk, done=False))
        except SLMError as exc:
            raise CommandError(f"slm: {exc}") from None
        finally:
            runtime.emit(SlmChunk(text="", done=True))
        return "".join(parts)

    interpreter.register(
        "slm",
        USAGE,
        f"ask this node's model ({backend.describe()}) and stream the answer",
        slm,
    )
