"""The console over a real node whose network side dies (its trio run ends by itself): it says
why, refuses what needs the network, and exits non-zero with the cause on stderr -- never a
console that looks alive and serves nothing (issue 13; the headless node does the same)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from textual.pilot import Pilot

from console.app import RnetConsole, make_app
from console.lifeline import exit_code
from console.link import ScriptedLink
from console.runtime_link import RuntimeLink
from tests.console.helpers import wait_for
from tests.console.real_node import (
    SIZE,
    bootstrap_args,
    bootstrap_node,
    exited_1_saying,
    logged,
    run_console_headless,
    says_it_refuses_and_quits,
)

CLOSED_HOST = "NodeError: the network side stopped unexpectedly"


async def test_a_closed_host_is_said_commands_are_refused_and_q_exits_1(tmp_path: Path) -> None:
    link = RuntimeLink(bootstrap_node(tmp_path / "boot"))
    app = make_app(link, role="bootstrap", save_settings=False, network_exit_delay_s=120)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: app.state.peer_id != "", 30, "the bootstrap ready")
        runtime = link.runtime
        assert app.network_down is None and app.sub_title.startswith("bootstrap")
        # The libp2p host stops under the node (not asked by the console): its trio run ends.
        runtime.bridge.start_soon(runtime.host.close)
        await wait_for(pilot, lambda: app.network_down is not None, 15, "the loss noticed")
        assert app.network_down == CLOSED_HOST
        await says_it_refuses_and_quits(
            pilot, app, f"the node's network side stopped: {CLOSED_HOST}"
        )
    exited_1_saying(app, link, f"the node's network side stopped: {CLOSED_HOST}")


async def test_an_error_in_the_trio_run_ends_the_console_after_its_countdown(
    tmp_path: Path,
) -> None:
    link = RuntimeLink(bootstrap_node(tmp_path / "boot"))
    app = make_app(link, role="bootstrap", save_settings=False, network_exit_delay_s=1.0)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.state.peer_id != "", 30, "the bootstrap ready")

        async def listener_breaks() -> None:
            raise OSError("injected: the listener broke")

        link.runtime.bridge.start_soon(listener_breaks)  # an error escapes a trio task
        # Nobody presses a key (a console under a supervisor): it exits by itself.
        await wait_for(pilot, lambda: app.return_code is not None, 15, "the exit")
    assert app.network_down == "OSError: injected: the listener broke"
    assert app.return_code == 1
    assert link.closed and not link.runtime.bridge.running
    stderr = io.StringIO()
    assert exit_code(app, "bootstrap", stderr) == 1
    assert "network side stopped: OSError: injected: the listener broke" in stderr.getvalue()


async def test_a_console_closed_by_q_exits_0_and_reports_nothing(tmp_path: Path) -> None:
    link = RuntimeLink(bootstrap_node(tmp_path / "boot"))
    app = make_app(link, role="bootstrap", save_settings=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.state.peer_id != "", 30, "the bootstrap ready")
        await pilot.press("q")
    assert app.network_down is None and app.return_code == 0
    stderr = io.StringIO()
    assert exit_code(app, "bootstrap", stderr) == 0 and stderr.getvalue() == ""


async def test_keys_that_need_the_network_are_disabled_and_nothing_reaches_the_node() -> None:
    link = ScriptedLink()
    app = make_app(link, save_settings=False, network_exit_delay_s=120)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: link.started)
        assert app.check_action("pipe", ()) is True
        link.lose_network("OSError: injected")
        await wait_for(pilot, lambda: app.network_down == "OSError: injected")
        assert app.check_action("pipe", ()) is None  # greyed in the footer
        assert app.check_action("help", ()) is True
        await pilot.press("p")
        await pilot.press("colon", *"pipe 3 hi", "enter")
        await wait_for(pilot, lambda: logged(app, "refused `pipe 3 hi`"))
        assert app.screen.__class__.__name__ == "Screen"  # `p` opened no modal
        assert link.commands == []
        await pilot.press("escape", "q")
    assert app.return_code == 1


def test_rnet_bootstrap_console_exits_1_with_the_cause_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole `rnet bootstrap` console path (``run_console``): Textual runs headless (no
    terminal here) with an autopilot that breaks the network side once the node is up; the
    exit code and the cause come back after the App closed, the cause on stderr."""

    async def break_the_network(pilot: Pilot[int]) -> None:
        app = pilot.app
        assert isinstance(app, RnetConsole) and isinstance(app.link, RuntimeLink)
        await wait_for(pilot, lambda: app.state.peer_id != "", 30, "the bootstrap ready")
        runtime = app.link.runtime
        runtime.bridge.start_soon(runtime.host.close)

    code = run_console_headless(monkeypatch, bootstrap_args(tmp_path / "boot"), break_the_network)
    assert code == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == f"rnet bootstrap: the node's network side stopped: {CLOSED_HOST}"
    log = (tmp_path / "boot" / "console.log").read_text(encoding="utf-8")
    assert f"network side stopped: {CLOSED_HOST}" in log
