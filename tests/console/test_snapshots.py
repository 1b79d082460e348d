"""Two SVG snapshots of the main screen after a session (dark and light) at a fixed 100x32.

The clock is frozen (log timestamps, deadlines) and everything shown comes from scripted events,
so the picture is deterministic. After an intended visual change, regenerate with
``RNET_UPDATE_SNAPSHOTS=1 python -m pytest tests/console/test_snapshots.py`` and review the SVGs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from textual.app import App
from textual.pilot import Pilot

import console.session_view
import console.state
from console.app import REFRESH_INTERVAL_S, make_app
from console.link import ScriptedLink
from console.settings import Settings
from tests.console.helpers import EXECUTORS, PEERS, ready, result, session, wait_for

SNAPSHOTS = Path(__file__).with_name("snapshots")
FROZEN_NOW = 1_800_000_000.0


class FrozenClock:
    """Stands in for the ``time`` module inside ``console.state`` and ``console.session_view``."""

    @staticmethod
    def time() -> float:
        return FROZEN_NOW


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console.state, "time", FrozenClock)
    monkeypatch.setattr(console.session_view, "time", FrozenClock)
    monkeypatch.delenv("NO_COLOR", raising=False)  # colours are part of the picture
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def script() -> list[dict]:
    events: list[dict] = [ready()]
    for i, peer in enumerate(PEERS[:4]):
        events.append({"event": "peer_joined", "peer_id": peer, "addr": f"127.0.0.1:{5001 + i}"})
        events.append(
            {
                "event": "peer_info",
                "peer_id": peer,
                "model": "sim/honest",
                "backend": "sim",
                "rtt_ms": 2.0 + i,
                "state": "connected",
                "name": f"provider-{i + 1}",
            }
        )
    events.append({"event": "mesh", "topics": {"swarm/mesh": PEERS[:4]}})
    deadline = int(FROZEN_NOW * 1000) + 12_300
    events.append(session("task-1", stage="verify", stage_deadline_ms=deadline))
    done = result("task-1")
    events.append(done)
    # The engine's snapshot after the result: stage done, the result's tally.
    responses = {EXECUTORS[0]: "Paris.", EXECUTORS[1]: "Lyon."}
    events.append(
        session(
            "task-1",
            stage="done",
            stage_deadline_ms=None,
            responses=responses,
            scores=done["scores"],
            averages=done["averages"],
            winner=done["winner"],
            missing=done["missing"],
        )
    )
    events.append(session("task-2", stage="execute", stage_deadline_ms=deadline))
    events.append({"event": "error", "message": "judge timed out", "source": "slm"})
    return events


async def settled_screenshot(pilot: Pilot, app: App, timeout: float = 15.0) -> str:
    """The screen once painting is done: the same picture twice in a row.

    A fixed pause was not enough on a loaded machine (the last layout, with its scrollbar, came
    later). Each round outlasts the console's repaint interval (a pending repaint timer fires
    first) and then lets the app go idle, so two equal exports mean nothing was left to draw.
    """
    deadline = time.monotonic() + timeout
    previous = None
    while True:
        await pilot.pause(3 * REFRESH_INTERVAL_S)
        await pilot.pause()
        svg = app.export_screenshot(title="rnet console")
        if svg == previous:
            return svg
        if time.monotonic() > deadline:
            raise AssertionError(f"the screen was still changing after {timeout}s")
        previous = svg


@pytest.mark.parametrize("theme", ["rnet-dark", "rnet-light"])
async def test_main_screen_snapshot(frozen: None, theme: str, tmp_path: Path) -> None:
    app = make_app(
        ScriptedLink(script()),
        backend="sim/honest",
        simulated=True,
        settings=Settings(theme=theme),
        save_settings=False,
    )
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.sessions_pane.row_count == 2, what="both sessions")
        app.selected_task = "task-1"  # show the finished one
        await wait_for(pilot, lambda: app.scores_pane.matrix.row_count == 2)
        assert str(app.scores_pane.matrix.get_row(EXECUTORS[0])[0]).startswith("★")
        svg = await settled_screenshot(pilot, app)
    expected = SNAPSHOTS / f"main-{theme}.svg"
    if os.environ.get("RNET_UPDATE_SNAPSHOTS") or not expected.exists():
        expected.write_text(svg, encoding="utf-8")
        if not os.environ.get("RNET_UPDATE_SNAPSHOTS"):
            pytest.fail(f"no snapshot yet: wrote {expected}; review it and commit it")
        return
    if svg != expected.read_text(encoding="utf-8"):
        actual = tmp_path / expected.name
        actual.write_text(svg, encoding="utf-8")
        pytest.fail(
            f"screen differs from {expected} (now: {actual}); if intended, regenerate with "
            "RNET_UPDATE_SNAPSHOTS=1 and review"
        )
