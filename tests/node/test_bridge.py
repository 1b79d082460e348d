"""The asyncio <-> trio bridge: both directions, errors, cancellation, clean shutdown."""

from __future__ import annotations

import asyncio

import pytest
import trio

from node.bridge import BridgeClosed, TrioBridge


async def test_calls_cross_both_ways_and_errors_propagate() -> None:
    bridge = TrioBridge()
    await bridge.start()
    try:

        async def in_trio(x: int) -> int:
            await trio.lowlevel.checkpoint()
            trio.lowlevel.current_trio_token()  # really inside trio
            return x * 2

        assert await bridge.run(in_trio, 21) == 42

        async def asyncio_side(x: int) -> str:
            assert asyncio.current_task() is not None  # really inside asyncio
            return f"got {x}"

        async def trio_calls_asyncio() -> str:
            return await bridge.run_asyncio(asyncio_side, 7)

        assert await bridge.run(trio_calls_asyncio) == "got 7"

        async def fails() -> None:
            raise ValueError("from trio")

        with pytest.raises(ValueError, match="from trio"):
            await bridge.run(fails)

        started = asyncio.Event()
        bridge.start_soon(_set_from_trio, bridge, started)
        await asyncio.wait_for(started.wait(), 5)
    finally:
        await bridge.aclose()
    with pytest.raises(BridgeClosed):
        await bridge.run(trio.sleep, 0)
    await bridge.aclose()  # idempotent


async def _set_from_trio(bridge: TrioBridge, event: asyncio.Event) -> None:
    bridge.call_soon_asyncio(event.set)


async def test_cancelling_the_asyncio_side_cancels_the_trio_task() -> None:
    bridge = TrioBridge()
    await bridge.start()
    cancelled = asyncio.Event()
    running = asyncio.Event()
    try:

        async def forever() -> None:
            bridge.call_soon_asyncio(running.set)
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                bridge.call_soon_asyncio(cancelled.set)
                raise

        task = asyncio.create_task(bridge.run(forever))
        await asyncio.wait_for(running.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(cancelled.wait(), 5)

        # and cancelling the trio side cancels the asyncio coroutine it awaits
        asyncio_cancelled = asyncio.Event()

        async def slow() -> None:
            try:
                await asyncio.Event().wait()  # until cancelled
            except asyncio.CancelledError:
                asyncio_cancelled.set()
                raise

        async def trio_with_timeout() -> bool:
            with trio.move_on_after(0.05):
                await bridge.run_asyncio(slow)
                return False
            return True

        assert await bridge.run(trio_with_timeout) is True
        await asyncio.wait_for(asyncio_cancelled.wait(), 5)
    finally:
        await bridge.aclose()


async def test_aclose_stops_background_tasks() -> None:
    bridge = TrioBridge()
    await bridge.start()
    stopped = asyncio.Event()

    running = asyncio.Event()

    async def background() -> None:
        bridge.call_soon_asyncio(running.set)
        try:
            await trio.sleep_forever()
        finally:
            bridge.call_soon_asyncio(stopped.set)

    bridge.start_soon(background)
    await asyncio.wait_for(running.wait(), 5)
    await asyncio.wait_for(bridge.aclose(), 5)
    await asyncio.wait_for(stopped.wait(), 5)
    assert not bridge.running
