"""The console over a real leader node (in-process runtime, trio guest on Textual's loop) and
real provider processes (``sim``) from the runtime engineer's ``tests.node.swarm``."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from console.app import make_app
from console.runtime_link import RuntimeLink
from tests.console.helpers import wait_for
from tests.node.swarm import Swarm

pytestmark = pytest.mark.slow

SIZE = (120, 40)


def leader_runtime(swarm: Swarm, data_dir: Path):
    from node.assemble import assemble
    from node.cmd_node import configure
    from node.config import resolve_node_config

    parser = argparse.ArgumentParser()
    configure(parser)  # exactly the flags of `rnet node`
    args = parser.parse_args(
        [
            "--serve",
            "127.0.0.1:0",
            "--bootstrap",
            swarm.bootstrap_maddr,
            "--name",
            "leader",
            "--data-dir",
            str(data_dir),
            "--backend",
            "sim",
        ]
    )
    return assemble(args, resolve_node_config(args, "provider"))


def connected(app) -> int:
    return sum(1 for p in app.state.peers.values() if p.state == "connected")


async def test_pipe_key_runs_a_real_session_until_the_scores_show_a_winner(tmp_path: Path) -> None:
    with Swarm(tmp_path / "swarm") as swarm:
        swarm.start_bootstrap()
        swarm.start_providers(3)
        link = RuntimeLink(leader_runtime(swarm, tmp_path / "leader"))
        app = make_app(link, backend="sim/honest", simulated=True)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.state.peer_id != "", 60, "leader ready")
            await wait_for(pilot, lambda: connected(app) >= 4, 60, "bootstrap + 3 peers")
            await wait_for(pilot, lambda: app.peers_pane.row_count >= 4, 10, "peer rows")
            # --serve: the gateway runs next to the console and says where.
            await wait_for(
                pilot,
                lambda: any(
                    e.text.startswith("serving at http://127.0.0.1:") for e in app.state.log
                ),
                30,
                "the gateway",
            )
            await wait_for(
                pilot, lambda: "swarm/mesh" in str(app.mesh_pane.render()), 30, "mesh topics"
            )
            # The real interpreter answers a bad command with its usage.
            await pilot.press("colon", *"ping", "enter")
            await wait_for(
                pilot,
                lambda: any(e.text.startswith("usage: ping") for e in app.state.log),
                30,
                "usage of ping",
            )
            assert "pipe" in app.command_input.suggester_names.names
            await pilot.press("escape")
            await pilot.press("p")
            await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PipeModal")
            await pilot.press(*"What is the capital of France?", "enter")
            await wait_for(pilot, lambda: app.selected_session is not None, 30, "a session")
            view = app.selected_session
            await wait_for(
                pilot,
                lambda: app.selected_session is not None and app.selected_session.winner,
                60,
                "a winner",
            )
            view = app.selected_session
            matrix = app.scores_pane.matrix
            await wait_for(pilot, lambda: matrix.row_count == len(view.executors), 10)
            winner_row = [str(c) for c in matrix.get_row(view.winner)]
            assert winner_row[0].startswith("★")
            assert view.winning_text and "simulated" in view.winning_text
            assert set(view.executors).isdisjoint(view.verifiers)
            assert len(view.executors) + len(view.verifiers) == 3
            stages = [str(c) for c in app.sessions_pane.get_row(view.task)]
            assert "✔" in stages[1]
            await wait_for(
                pilot,
                lambda: any(e.source == "pipe" and "winner" in e.text for e in app.state.log),
                30,
                "the pipe command's output",
            )
            await pilot.press("q")
        assert link.closed  # quitting closed the node (q -> on_unmount -> aclose)
        assert not link.runtime.bridge.running  # ... all the way down: trio guest run finished
