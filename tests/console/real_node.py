"""A real bootstrap node under the console, for the tests whose node fails: its flags, what the
App shows (log, banner, notifications), and the whole ``run_console`` path run headless."""

from __future__ import annotations

import argparse
import io
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from console.app import RnetConsole
from console.lifeline import exit_code
from console.runtime_link import RuntimeLink, run_console
from node.assemble import AssembledNode, assemble
from node.cmd_bootstrap import configure
from node.config import resolve_node_config
from tests.console.helpers import wait_for
from tests.node.swarm import free_port

SIZE = (120, 40)


def bootstrap_args(data_dir: Path, port: int | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure(parser)  # exactly the flags of `rnet bootstrap`
    port = free_port() if port is None else port
    return parser.parse_args(
        ["--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)]
    )


def bootstrap_node(data_dir: Path, port: int | None = None) -> AssembledNode:
    args = bootstrap_args(data_dir, port)
    return assemble(args, resolve_node_config(args, "bootstrap"))


def logged(app: RnetConsole, text: str, level: str | None = None) -> bool:
    return any(text in e.text and level in (None, e.level) for e in app.state.log)


def banner(app: RnetConsole) -> str:
    return str(app.query_one("#banner", Static).render())


def toasts(app: RnetConsole) -> str:
    return " ".join(str(toast.render()) for toast in app.screen.query("Toast"))


def run_console_headless(
    monkeypatch: pytest.MonkeyPatch,
    args: argparse.Namespace,
    auto_pilot: Callable[[Pilot[int]], Awaitable[None]] | None = None,
    *,
    exit_delay_s: float = 0.5,
) -> int:
    """``run_console(args, role="bootstrap")`` with Textual headless (no terminal here), the
    exit countdown shortened to ``exit_delay_s``, and pytest's logging handlers given back."""
    real_run = RnetConsole.run

    def run_headless(self: RnetConsole, **kwargs: object) -> int | None:
        self.network_exit_delay_s = exit_delay_s
        return real_run(self, headless=True, size=SIZE, auto_pilot=auto_pilot)

    monkeypatch.setattr(RnetConsole, "run", run_headless)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        return run_console(args, role="bootstrap")
    finally:  # run_console routes logging to its log file: give pytest its handlers back
        for handler in list(root.handlers):
            root.removeHandler(handler)
            if handler not in handlers:
                handler.close()
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


async def says_it_refuses_and_quits(pilot: Pilot[int], app: RnetConsole, line: str) -> None:
    """A console whose node is down says ``line`` plainly (the log pane, a notification, the
    banner with its countdown, the title), greys the session keys, refuses `topics` with that
    reason while `help` still answers; then `q`."""
    cause = app.network_down
    assert cause is not None and cause in line
    await wait_for(pilot, lambda: logged(app, line, "error"), what="the log line")
    await wait_for(pilot, lambda: cause in toasts(app), what="the notification")
    await wait_for(pilot, lambda: "exiting with code 1 in 1" in banner(app), what="countdown")
    assert cause in banner(app)
    assert app.sub_title.startswith("NETWORK DOWN")
    assert app.check_action("pipe", ()) is None  # greyed in the footer
    await pilot.press("colon", *"topics", "enter")
    refused = f"refused `topics`: {line}; the console exits with code 1 in"
    await wait_for(pilot, lambda: logged(app, refused, "error"), what="the refusal")
    await pilot.press(*"help", "enter")
    await wait_for(pilot, lambda: logged(app, "bootmesh"), 10, "help's output")
    assert not logged(app, "refused `help`")
    await pilot.press("escape", "q")


def exited_1_saying(app: RnetConsole, link: RuntimeLink, line: str) -> None:
    """The App closed with code 1, the node with it, and ``line`` is what stderr gets."""
    assert app.return_code == 1 and app.return_value == 1
    assert link.closed and not link.runtime.bridge.running
    stderr = io.StringIO()
    assert exit_code(app, "bootstrap", stderr) == 1
    assert stderr.getvalue() == f"rnet bootstrap: {line}\n"
