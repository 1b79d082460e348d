"""A burst of 1,000 runtime events is folded and drawn in a few repaints; the UI stays live."""

from __future__ import annotations

import asyncio
import time

from console.app import REFRESH_INTERVAL_S, make_app
from console.link import ScriptedLink
from tests.console.helpers import EXECUTORS, PEERS, VERIFIERS, row_text, session, wait_for


def burst(n: int = 1000) -> list[dict]:
    events: list[dict] = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            score = round((i % 100) / 100, 2)
            events.append(
                session(
                    scores={
                        EXECUTORS[0]: {VERIFIERS[0]: score, VERIFIERS[1]: None},
                        EXECUTORS[1]: {VERIFIERS[0]: None, VERIFIERS[1]: None},
                    }
                )
            )
        elif kind == 1:
            events.append(
                {
                    "event": "peer_info",
                    "peer_id": PEERS[i % 5],
                    "model": "sim/honest",
                    "backend": "sim",
                    "rtt_ms": float(i % 50),
                    "state": "connected",
                }
            )
        elif kind == 2:
            events.append(
                {
                    "event": "message",
                    "topic": "chat",
                    "sender": PEERS[0],
                    "kind": "text",
                    "text": f"msg {i}",
                }
            )
        else:
            events.append({"event": "log", "level": "info", "logger": "libp2p", "message": f"l{i}"})
    events.append(
        session(
            stage="finalize",
            scores={
                EXECUTORS[0]: {VERIFIERS[0]: 0.77, VERIFIERS[1]: 0.5},
                EXECUTORS[1]: {VERIFIERS[0]: 0.1, VERIFIERS[1]: 0.2},
            },
        )
    )
    return events


async def test_burst_of_1000_events_in_one_go_is_coalesced() -> None:
    link = ScriptedLink()
    app = make_app(link)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        before = dict(app.stats)
        started = time.monotonic()
        for event in burst():
            link.emit(event)  # synchronous, as a runtime callback delivers them
        await wait_for(
            pilot, lambda: app.stats["events"] - before["events"] == 1001, what="all events folded"
        )
        matrix = app.scores_pane.matrix
        await wait_for(
            pilot,
            lambda: matrix.row_count == 2 and row_text(matrix, EXECUTORS[0])[1] == "0.77",
            what="final snapshot",
        )
        elapsed = time.monotonic() - started
        # One wake-up for the whole burst; only a handful of repaints.
        assert app.stats["batches"] - before["batches"] <= 2
        assert app.stats["repaints"] - before["repaints"] <= 5
        assert any(line.endswith("msg 998") for line in app.log_pane.visible_text())
        # Still responsive: a key acts at once.
        await pilot.press("t")
        assert app.theme == "rnet-light"
        assert elapsed < 20  # an upper bound for a loaded 2-core machine, not a benchmark


async def test_events_trickling_in_are_repainted_at_a_bounded_rate() -> None:
    link = ScriptedLink()
    app = make_app(link)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        before = dict(app.stats)
        started = time.monotonic()
        events = burst()
        for i in range(0, len(events), 10):  # 100 small batches, each its own loop turn
            for event in events[i : i + 10]:
                link.emit(event)
            await asyncio.sleep(0)
        await wait_for(pilot, lambda: app.stats["events"] - before["events"] == 1001)
        await wait_for(pilot, lambda: not app._dirty and app._refresh_timer is None)
        elapsed = time.monotonic() - started
        repaints = app.stats["repaints"] - before["repaints"]
        # Throttled: at most one repaint per REFRESH_INTERVAL_S (+1 for the first, immediate one).
        assert repaints <= elapsed / REFRESH_INTERVAL_S + 2
        assert repaints < 101
