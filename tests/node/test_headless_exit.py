"""A node whose trio run dies by itself exits non-zero with the cause (headless), so a
supervisor restarts it: never a process that stays up and serves nothing."""

from __future__ import annotations

import asyncio
import io
import json
from types import SimpleNamespace

import outcome

from node.headless import EventPrinter, _until_stopped


def _runtime(ended: asyncio.Future[object]) -> object:
    return SimpleNamespace(bridge=SimpleNamespace(run_ended=lambda: ended))


def test_a_dead_trio_run_ends_the_process_with_the_cause() -> None:
    async def main() -> tuple[int, str]:
        out = io.StringIO()
        printer = EventPrinter(out, json_lines=True)
        ended: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        error = ExceptionGroup("nursery", [RuntimeError("the network side stopped unexpectedly")])
        ended.set_result(outcome.Error(error))
        code = await _until_stopped(_runtime(ended), asyncio.Event(), printer, "bootstrap")
        printer.flush()
        return code, out.getvalue()

    code, text = asyncio.run(main())
    assert code == 1
    line = json.loads(text.splitlines()[-1])
    assert line["event"] == "error" and "network side stopped unexpectedly" in line["message"]


def test_a_signal_stops_with_zero() -> None:
    async def main() -> int:
        printer = EventPrinter(io.StringIO(), json_lines=True)
        ended: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        stop.set()
        return await _until_stopped(_runtime(ended), stop, printer, "provider")

    assert asyncio.run(main()) == 0
