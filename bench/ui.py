"""Console responsiveness: start-up to first frame, and event -> rendered latency under a burst.

1. Import times, each in a fresh interpreter (median of ``--reps``): the bare interpreter,
   ``console.app`` (Textual and the panes), ``node.net.host`` (libp2p).
2. ``rnet node`` start -> first frame: the real command (``python -m node node``, console, sim
   backend, a bootstrap address nobody listens on) in a pseudo-terminal of 120x40; the first
   frame is the first time the screen output shows the footer's key labels.
3. In process, Textual's headless driver (``App.run_test()``): ``make_app()`` -> first display.
4. Event -> rendered, p95: runtime events (``node.events`` objects: session snapshots, peer
   info, messages, log lines) enter the App the way ``NodeRuntime.emit`` delivers them (one
   ``loop.call_soon_threadsafe`` each, to the link's subscriber), 1,000 at once, ``--bursts``
   times. An event counts as rendered at the first display (``App.post_display_hook``, called
   after every compositor update, headless too) after the pane refresh that folded it in.
   Also reported: where a burst's time goes (delivery, folding into the state, the pane
   refresh, drawing frames, and the garbage collection that ran meanwhile), and the same 1,000
   events as a stream over one second.

Alone: ``python -m bench.ui``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import pty
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.common import machine, machine_line, progress, say, summary, table
from node.config import DEMO_BOOTSTRAP_KEY
from node.localswarm import REPO_ROOT as ROOT
from node.localswarm import demo_bootstrap_maddr, free_port

logger = logging.getLogger(__name__)

SIZE = (120, 40)
FIRST_FRAME_TIMEOUT_S = 30.0
# The footer's key labels: on screen only once the App has composed and drawn its first frame.
FRAME_MARKERS = (b"Advertise", b"Finalize")
_ANSI = re.compile(rb"\x1b(\[[0-9;?<=>]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


# ------------------------------------------------------------------------------------------------
# 1. import times
# ------------------------------------------------------------------------------------------------

IMPORTS = {
    "python (bare interpreter)": "pass",
    "console.app (Textual)": "import console.app",
    "node.host (libp2p)": "import node.net.host",
}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    for key in ("BOOTSTRAP_NODE", "RNET_DATA_DIR"):
        env.pop(key, None)
    return env


def import_times(reps: int = 3) -> dict[str, dict[str, float]]:
    """Seconds to import each module in a fresh interpreter (whole process wall for ``pass``)."""
    out = {}
    for label, stmt in IMPORTS.items():
        samples = []
        for _ in range(reps):
            code = f"import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-c", code],
                cwd=ROOT,
                env=_env(),
                capture_output=True,
                text=True,
                timeout=60,
            )
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise RuntimeError(f"{stmt!r} failed: {proc.stderr.strip()[-300:]}")
            samples.append(wall if stmt == "pass" else float(proc.stdout.strip()))
        out[label] = summary(samples)
    return out


# ------------------------------------------------------------------------------------------------
# 2. rnet node -> first frame, in a pseudo-terminal
# ------------------------------------------------------------------------------------------------


def first_frame_pty(workdir: Path) -> dict[str, float]:
    """Start ``rnet node`` (console) in a pty; seconds to the first frame and to exit."""
    master, slave = pty.openpty()
    cols, rows = SIZE
    import fcntl

    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = _env()
    env.update(
        {
            "TERM": "xterm-256color",
            "COLUMNS": str(cols),
            "LINES": str(rows),
            "RNET_DATA_DIR": str(workdir / "data"),
            "XDG_CONFIG_HOME": str(workdir / "config"),
            "RNET_BACKEND": "sim",
            "BOOTSTRAP_KEY": DEMO_BOOTSTRAP_KEY,
            # Nobody listens there: the node keeps retrying; the first frame does not wait on it.
            "BOOTSTRAP_NODE": demo_bootstrap_maddr(free_port()),
        }
    )
    argv = [sys.executable, "-m", "console.cli", "node", "--name", "console-bench", "--port", "0"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        cwd=workdir,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        close_fds=True,
    )
    os.close(slave)
    seen = b""
    first_frame = None
    deadline = t0 + FIRST_FRAME_TIMEOUT_S
    try:
        while first_frame is None and time.perf_counter() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            plain = _ANSI.sub(b"", seen[-200_000:])
            if all(m in plain for m in FRAME_MARKERS):
                first_frame = time.perf_counter() - t0
        if first_frame is None:
            tail = _ANSI.sub(b"", seen)[-400:].decode("utf-8", "replace")
            raise RuntimeError(f"no first frame within {FIRST_FRAME_TIMEOUT_S:g} s: {tail!r}")
        # SIGTERM quits like `q` (the node closes); keep draining the pty so it never blocks.
        t_quit = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        while proc.poll() is None and time.perf_counter() - t_quit < 15:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    if not os.read(master, 65536):
                        break
                except OSError:
                    break
        proc.wait(timeout=15)
        return {"first_frame_s": first_frame, "quit_s": time.perf_counter() - t_quit}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        os.close(master)


# ------------------------------------------------------------------------------------------------
# 3 and 4. in process, headless driver
# ------------------------------------------------------------------------------------------------


def _peer_ids(n: int) -> list[str]:
    from protocol.identity import NaclSigner, peer_id_to_str

    return [peer_id_to_str(NaclSigner(bytes([i + 1]) * 32).peer_id) for i in range(n)]


def runtime_events(n: int = 1000, tag: str = "") -> list[Any]:
    """A realistic mix of runtime events: a session's snapshots as scores come in, peer info,
    topic messages and log lines (``node.events`` objects, as the runtime emits them)."""
    from node import events as ev

    peers = _peer_ids(7)
    leader, execs, vers = peers[0], peers[1:4], peers[4:7]
    out: list[Any] = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            done = (i // 4) % 10
            scores = {
                e: {
                    v: (round(((i + j) % 100) / 100, 2) if j < done else None)
                    for j, v in enumerate(vers)
                }
                for e in execs
            }
            out.append(
                ev.Session(
                    task=f"task-bench{tag}",
                    leader=leader,
                    role="leader",
                    stage="verify",
                    stage_deadline_ms=int(time.time() * 1000) + 30_000,
                    prompt="What is the capital of France?",
                    joined=peers[1:],
                    executors=execs,
                    verifiers=vers,
                    responses={e: f"sim answer of {e[-6:]}: Paris." for e in execs},
                    scores=scores,
                    averages={},
                    counts={"joined": 6, "executors": 3, "verifiers": 3, "responses": 3},
                )
            )
        elif kind == 1:
            out.append(
                ev.PeerInfo(
                    peer_id=peers[1 + i % 6],
                    model="sim/honest",
                    backend="sim",
                    rtt_ms=float(i % 50),
                    name=f"p{1 + i % 6}",
                )
            )
        elif kind == 2:
            out.append(ev.Message(topic="chat", sender=peers[1], kind="text", text=f"msg {tag}{i}"))
        else:
            out.append(ev.Log(level="INFO", logger="bench", message=f"log line {tag}{i}"))
    return out


class _Probe:
    """Hooks on the App: when each pane refresh happened, and when each display followed it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.first_display: float | None = None
        self.displays = 0
        self._pending: list[int] = []
        self.rendered_upto = 0
        self.frames: list[tuple[float, int]] = []  # (time, events folded and drawn so far)
        self.fold_s = 0.0  # time in ConsoleState.apply_all (folding each batch into the state)
        self.refresh_s = 0.0  # time in the App's pane refresh (snapshots -> widgets)
        self.draws: list[tuple[float, float]] = []  # (start, seconds) of each compositor pass
        self.collections: list[tuple[float, float]] = []  # (start, seconds) of each GC pass
        self._gc_start = 0.0
        # Set on every pane refresh and every display: what _wait wakes up on.
        self.changed = asyncio.Event()
        original_refresh = app._refresh_panes
        original_apply_all = app.state.apply_all

        def refresh_panes() -> None:
            t = time.perf_counter()
            original_refresh()
            self.refresh_s += time.perf_counter() - t
            self._pending.append(app.stats["events"])
            self.changed.set()

        def apply_all(events: Any, now: float | None = None) -> set[str]:
            t = time.perf_counter()
            try:
                return original_apply_all(events, now)
            finally:
                self.fold_s += time.perf_counter() - t

        def post_display_hook() -> None:
            now = time.perf_counter()
            self.displays += 1
            if self.first_display is None:
                self.first_display = now
            if self._pending:
                self.rendered_upto = max(self.rendered_upto, *self._pending)
                self._pending.clear()
                self.frames.append((now, self.rendered_upto))
            self.changed.set()

        # Instance attributes shadow the methods: the App looks both up on ``self``.
        app._refresh_panes = refresh_panes
        app.post_display_hook = post_display_hook
        app.state.apply_all = apply_all

    def watch_screen(self, screen: Any) -> None:
        """Time every frame the screen draws (Textual's compositor: dirty widgets -> output)."""
        # Textual loads with the App under test (_headless), not when `bench` starts.
        from console.textual_compat import wrap_compositor_refresh

        def timed(original: Callable[[], None]) -> None:
            t = time.perf_counter()
            try:
                original()
            finally:
                self.draws.append((t, time.perf_counter() - t))

        wrap_compositor_refresh(screen, timed)

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        """``gc.callbacks`` hook: time every collection (any generation)."""
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.collections.append((self._gc_start, time.perf_counter() - self._gc_start))

    @staticmethod
    def spent(spans: list[tuple[float, float]], start: float, end: float) -> float:
        """Seconds of the ``spans`` that started between ``start`` and ``end``."""
        return sum(d for t, d in spans if start <= t <= end)

    def rendered_at(self, index: int) -> float | None:
        """When the event with global fold index ``index`` (0-based) was first on screen."""
        for t, upto in self.frames:
            if upto > index:
                return t
        return None


async def _wait(probe: _Probe, predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Until ``predicate()`` holds, re-checked on every refresh and display of the App. The wait
    per round is capped because the App's idle flags change after the refresh that notifies."""
    deadline = time.perf_counter() + timeout
    while not predicate():
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        probe.changed.clear()
        try:
            await asyncio.wait_for(probe.changed.wait(), min(remaining, 0.05))
        except TimeoutError:
            pass


async def _headless(bursts: int, events_per_burst: int, stream: bool) -> dict[str, Any]:
    from console.app import make_app
    from console.link import ScriptedLink
    from console.settings import Settings

    link = ScriptedLink()
    t0 = time.perf_counter()
    app = make_app(link, settings=Settings(), save_settings=False)
    probe = _Probe(app)
    out: dict[str, Any] = {}
    gc.callbacks.append(probe.on_gc)
    try:
        async with app.run_test(size=SIZE, headless=True) as pilot:
            await _wait(probe, lambda: probe.first_display is not None, 30, "first display")
            out["mount_to_first_frame_s"] = probe.first_display - t0  # type: ignore[operator]
            await pilot.pause()
            probe.watch_screen(app.screen)
            loop = asyncio.get_running_loop()
            latencies: list[float] = []
            burst_totals: list[float] = []
            fold_ms: list[float] = []
            delivery_ms: list[float] = []
            refresh_ms: list[float] = []
            draw_ms: list[float] = []
            gc_ms: list[float] = []
            repaints = []
            for b in range(bursts):
                await _wait(
                    probe,
                    lambda: not app._dirty and app._refresh_timer is None,
                    10,
                    "an idle console",
                )
                events = runtime_events(events_per_burst, tag=f"b{b}-")
                base = app.stats["events"]
                r0 = app.stats["repaints"]
                fold0, refresh0 = probe.fold_s, probe.refresh_s
                emitted = []
                delivered = [0.0]

                def deliver(event: Any, delivered: list[float] = delivered) -> None:
                    link.emit(event)
                    delivered[0] = time.perf_counter()

                for event in events:
                    # what NodeRuntime.emit does for every event: schedule the sinks on the loop
                    emitted.append(time.perf_counter())
                    loop.call_soon_threadsafe(deliver, event)
                last = base + len(events) - 1
                await _wait(
                    probe, lambda last=last: probe.rendered_at(last) is not None, 60, "the burst"
                )
                for i, t_emit in enumerate(emitted):
                    latencies.append(probe.rendered_at(base + i) - t_emit)  # type: ignore[operator]
                rendered = probe.rendered_at(last)
                burst_totals.append(rendered - emitted[0])  # type: ignore[operator]
                draw_ms.append(probe.spent(probe.draws, emitted[0], rendered) * 1000)  # type: ignore[arg-type]
                gc_ms.append(probe.spent(probe.collections, emitted[0], rendered) * 1000)  # type: ignore[arg-type]
                repaints.append(app.stats["repaints"] - r0)
                delivery_ms.append((delivered[0] - emitted[0]) * 1000)
                fold_ms.append((probe.fold_s - fold0) * 1000)
                refresh_ms.append((probe.refresh_s - refresh0) * 1000)
            out["burst"] = {
                "events": events_per_burst,
                "bursts": bursts,
                "latency_ms": summary([x * 1000 for x in latencies]),
                "whole_burst_ms": summary([x * 1000 for x in burst_totals]),
                "repaints_per_burst": statistics.median(repaints) if repaints else 0,
                # where a burst's time goes: delivery (the 1,000 loop callbacks up to the link's
                # subscriber), folding into the state, the pane refresh (snapshots -> widgets),
                # drawing frames (Textual's compositor, layout excluded); the rest is Textual's
                # message passing and layout. Garbage collection runs inside any of these.
                "delivery_ms": summary(delivery_ms),
                "fold_ms": summary(fold_ms),
                "pane_refresh_ms": summary(refresh_ms),
                "draw_ms": summary(draw_ms),
                "gc_ms": summary(gc_ms),
            }
            if stream:
                await _wait(
                    probe, lambda: not app._dirty and app._refresh_timer is None, 10, "idle"
                )
                events = runtime_events(events_per_burst, tag="s-")
                base = app.stats["events"]
                emitted = [0.0] * len(events)

                def emit(i: int, event: Any) -> None:
                    emitted[i] = time.perf_counter()
                    link.emit(event)

                start = loop.time()
                for i, event in enumerate(events):
                    loop.call_at(start + i / len(events), emit, i, event)
                last = base + len(events) - 1
                await _wait(probe, lambda: probe.rendered_at(last) is not None, 60, "the stream")
                lat = [probe.rendered_at(base + i) - t for i, t in enumerate(emitted)]  # type: ignore[operator]
                out["stream"] = {
                    "events": len(events),
                    "over_s": 1.0,
                    "latency_ms": summary([x * 1000 for x in lat]),
                }
            out["displays"] = probe.displays
            # Sanity: the last burst's final log line really is in the log pane.
            out["log_tail_ok"] = (
                any(f"log line b{bursts - 1}-" in line for line in app.log_pane.visible_text()[-5:])
                if hasattr(app.log_pane, "visible_text")
                else None
            )
    finally:
        gc.callbacks.remove(probe.on_gc)
    return out


def run(
    *,
    reps: int = 3,
    bursts: int = 5,
    events: int = 1000,
    pty_start: bool = True,
    stream: bool = True,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    progress("console: import times")
    out["imports_s"] = import_times(reps)
    if pty_start:
        progress("console: rnet node -> first frame (pty)")
        samples = []
        quits = []
        for _ in range(reps):
            with tempfile.TemporaryDirectory(prefix="rnet-bench-ui-") as tmp:
                r = first_frame_pty(Path(tmp))
            samples.append(r["first_frame_s"])
            quits.append(r["quit_s"])
        out["first_frame_s"] = summary(samples)
        out["quit_s"] = summary(quits)
    progress(f"console: {bursts} bursts of {events} events (headless)")
    saved = os.environ.get("XDG_CONFIG_HOME")
    with tempfile.TemporaryDirectory(prefix="rnet-bench-ui-") as tmp:
        os.environ["XDG_CONFIG_HOME"] = tmp  # no user settings (theme, keymap) leak in
        try:
            out.update(asyncio.run(_headless(bursts, events, stream)))
        finally:
            if saved is None:
                os.environ.pop("XDG_CONFIG_HOME", None)
            else:
                os.environ["XDG_CONFIG_HOME"] = saved
    return out


UI_HEADERS = ["measure", "median", "p95", "n"]


def ui_rows(r: dict[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for label, s in r["imports_s"].items():
        rows.append([f"import {label} (ms)", s["median"] * 1000, s["p95"] * 1000, s["n"]])
    if "first_frame_s" in r:
        s = r["first_frame_s"]
        rows.append(
            [
                "rnet node start -> first frame, pty (ms)",
                s["median"] * 1000,
                s["p95"] * 1000,
                s["n"],
            ]
        )
    rows.append(
        ["make_app -> first frame, headless (ms)", r["mount_to_first_frame_s"] * 1000, "-", 1]
    )
    b = r["burst"]
    rows.append(
        [
            f"event -> rendered, burst of {b['events']} (ms)",
            b["latency_ms"]["median"],
            b["latency_ms"]["p95"],
            b["latency_ms"]["n"],
        ]
    )
    for label, key in (
        ("whole burst folded + drawn (ms)", "whole_burst_ms"),
        ("  of which delivering them to the App (ms)", "delivery_ms"),
        ("  of which folding events into the state (ms)", "fold_ms"),
        ("  of which the pane refresh (ms)", "pane_refresh_ms"),
        ("  of which drawing frames (compositor) (ms)", "draw_ms"),
        ("  garbage collection during the burst (ms)", "gc_ms"),
    ):
        rows.append([label, b[key]["median"], b[key]["p95"], b["bursts"]])
    if "stream" in r:
        s = r["stream"]["latency_ms"]
        rows.append(
            [
                f"event -> rendered, {r['stream']['events']} over 1 s (ms)",
                s["median"],
                s["p95"],
                s["n"],
            ]
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ui", description=__doc__)
    parser.add_argument("--reps", type=int, default=3, help="start-up repetitions (default 3)")
    parser.add_argument("--bursts", type=int, default=5, help="bursts (default 5)")
    parser.add_argument("--events", type=int, default=1000, help="events per burst (1000)")
    parser.add_argument("--no-pty", action="store_true", help="skip the real start-up in a pty")
    args = parser.parse_args(argv)
    say(machine_line(machine()))
    r = run(reps=args.reps, bursts=args.bursts, events=args.events, pty_start=not args.no_pty)
    say(table(UI_HEADERS, ui_rows(r)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
