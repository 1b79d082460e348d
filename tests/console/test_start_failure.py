"""The console over a node that cannot start (its port is taken): like a lost network side, it
says why, refuses what needs the network, and exits 1 with the cause on stderr -- never a
console that stays up showing "could not start" to nobody (the headless node exits 1 too)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from console.app import RnetConsole, make_app
from console.link import ScriptedLink
from console.runtime_link import RuntimeLink
from tests.console.helpers import wait_for
from tests.console.real_node import (
    SIZE,
    banner,
    bootstrap_args,
    bootstrap_node,
    exited_1_saying,
    run_console_headless,
    says_it_refuses_and_quits,
)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another process would hold: a socket this test keeps listening on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


async def test_a_taken_port_is_said_commands_are_refused_and_q_exits_1(
    tmp_path: Path, taken_port: int
) -> None:
    cause = f"cannot listen on 127.0.0.1:{taken_port}: Address already in use"
    link = RuntimeLink(bootstrap_node(tmp_path / "boot", taken_port))
    app = make_app(link, role="bootstrap", save_settings=False, network_exit_delay_s=120)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: app.network_down is not None, 30, "the failed start")
        assert app.network_down == cause
        assert f"The node could not start: {cause}." in banner(app)
        assert "start the node with another --port" in banner(app)
        await says_it_refuses_and_quits(pilot, app, f"the node could not start: {cause}")
    exited_1_saying(app, link, f"the node could not start: {cause}")


class BrokenLink(ScriptedLink):
    async def start(self) -> None:
        raise RuntimeError("injected: no start")


async def test_an_unexpected_start_error_keeps_its_type_and_no_port_hint() -> None:
    app = make_app(BrokenLink(), save_settings=False, network_exit_delay_s=120)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.network_down is not None, what="the failed start")
        assert app.network_down == "RuntimeError: injected: no start"
        await wait_for(pilot, lambda: "exiting with code 1 in" in banner(app), what="countdown")
        assert "--port" not in banner(app)
        await pilot.press("q")
    assert app.return_code == 1


def test_rnet_bootstrap_console_on_a_taken_port_exits_1_with_the_cause_on_stderr(
    tmp_path: Path,
    taken_port: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The whole `rnet bootstrap` console path (``run_console``), nobody at the keys: the
    countdown ends it with exit code 1; the cause is on stderr after the App and in the log."""
    cause = f"cannot listen on 127.0.0.1:{taken_port}: Address already in use"

    async def watch_it_fail(pilot: Pilot[int]) -> None:
        # Presses nothing; a console that never notices fails this wait (and exits 0), no hang.
        app = pilot.app
        assert isinstance(app, RnetConsole)
        await wait_for(pilot, lambda: app.network_down is not None, 30, "the failed start")

    args = bootstrap_args(tmp_path / "boot", taken_port)
    code = run_console_headless(monkeypatch, args, watch_it_fail)
    assert code == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == f"rnet bootstrap: the node could not start: {cause}"
    log = (tmp_path / "boot" / "console.log").read_text(encoding="utf-8")
    assert f"the node could not start: {cause}" in log
