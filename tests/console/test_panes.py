"""Each pane fed with scripted runtime events (no network)."""

from __future__ import annotations

from textual.widgets import DataTable

from console.app import make_app
from console.link import ScriptedLink
from console.panes.log import SCREEN_LINES, LogView, render_entry
from console.panes.sessions import SEPARATOR
from console.state import short_id
from tests.console.helpers import (
    EXECUTORS,
    LEADER,
    PEERS,
    ready,
    result,
    row_text,
    session,
    wait_for,
)

SIZE = (120, 40)


async def test_peers_pane_shows_joins_info_and_loss() -> None:
    app = make_app(ScriptedLink())
    async with app.run_test(size=SIZE) as pilot:
        app.feed(
            ready(),
            {"event": "peer_joined", "peer_id": PEERS[0], "addr": "/ip4/127.0.0.1/tcp/5001"},
            {
                "event": "peer_info",
                "peer_id": PEERS[0],
                "model": "qwen2.5:1.5b",
                "backend": "ollama",
                "rtt_ms": 3.4,
                "state": "connected",
                "name": "p1",
            },
            {"event": "peer_joined", "peer_id": PEERS[1], "addr": "/ip4/127.0.0.1/tcp/5002"},
        )
        table = app.peers_pane
        await wait_for(pilot, lambda: table.row_count == 2, what="two peer rows")
        row = row_text(table, PEERS[0])
        assert row[0] == f"{short_id(PEERS[0])}\nup 3ms"
        assert row[1] == "p1 · /ip4/127.0.0.1/tcp/5001\nqwen2.5:1.5b (ollama)"
        # Drawn whole, not cut at the pane's edge (two lines per peer).
        shown = "\n".join(table_lines(table))
        assert "p1 · /ip4/127.0.0.1/tcp/5001" in shown and "qwen2.5:1.5b (ollama)" in shown
        assert "2 peers" in app.sub_title

        app.feed({"event": "peer_left", "peer_id": PEERS[1]})
        await wait_for(pilot, lambda: "lost" in row_text(table, PEERS[1])[0], what="peer lost")
        assert table.border_title == "Peers 1/2"
        assert "1 peer " in app.sub_title + " "


async def test_peers_pane_shows_a_peer_without_a_model_and_follows_its_rtt() -> None:
    app = make_app(ScriptedLink())
    async with app.run_test(size=SIZE) as pilot:
        info = {
            "event": "peer_info",
            "peer_id": PEERS[0],
            "model": "llama3.2:1b",
            "backend": "ollama",
            "rtt_ms": 29.0,
            "state": "connected",
            "name": "p1",
            "status": "no model: llama3.2:1b is not pulled",
        }
        app.feed(ready(), info)
        table = app.peers_pane
        await wait_for(pilot, lambda: table.row_count == 1, what="the peer's row")
        assert row_text(table, PEERS[0])[1] == "p1\nno model: llama3.2:1b is not pulled"
        assert any("is not pulled" in entry.text for entry in app.state.log)
        app.feed({**info, "status": "", "rtt_ms": 4.1})  # the model answers; a newer ping
        await wait_for(
            pilot, lambda: row_text(table, PEERS[0])[0].endswith("up 4ms"), what="the RTT follows"
        )
        assert row_text(table, PEERS[0])[1] == "p1\nllama3.2:1b (ollama)"


async def test_peers_pane_shows_each_providers_slots_used_of_offered() -> None:
    app = make_app(ScriptedLink())
    async with app.run_test(size=SIZE) as pilot:
        info = {
            "event": "peer_info",
            "peer_id": PEERS[0],
            "model": "sim/honest",
            "backend": "sim",
            "rtt_ms": 2.0,
            "state": "connected",
            "name": "p1",
            "slots": 4,
            "slots_used": 1,
        }
        app.feed(ready(), info)
        table = app.peers_pane
        await wait_for(pilot, lambda: table.row_count == 1, what="the peer's row")
        assert row_text(table, PEERS[0])[0] == f"{short_id(PEERS[0])}\nup 2ms 1/4"
        app.feed({**info, "slots_used": 4})  # full: it joins nothing until a slot frees
        await wait_for(
            pilot, lambda: row_text(table, PEERS[0])[0].endswith(" 4/4"), what="slots follow"
        )


async def test_the_title_shows_this_nodes_gateway_queue() -> None:
    app = make_app(ScriptedLink())
    async with app.run_test(size=SIZE) as pilot:
        app.feed(ready(), {"event": "gateway_queue", "running": 5, "waiting": 12, "capacity": 5})
        await wait_for(
            pilot,
            lambda: "gateway 5/5 running, 12 queued" in app.sub_title,
            what="the queue in the title",
        )


async def test_mesh_pane_toggles_local_and_bootstrap_views() -> None:
    app = make_app(ScriptedLink())
    async with app.run_test(size=SIZE) as pilot:
        app.feed(
            {"event": "mesh", "topics": {"swarm/mesh": PEERS[:2], "task-9": [PEERS[0]]}},
            {"event": "bootmesh", "topics": {"swarm/mesh": PEERS}},
        )
        mesh = app.mesh_pane
        await wait_for(pilot, lambda: "task-9" in str(mesh.render()), what="local mesh")
        assert mesh.border_title == "Mesh · local"
        await pilot.press("m")
        await wait_for(pilot, lambda: mesh.border_title == "Mesh · bootstrap")
        shown = str(mesh.render())
        assert "task-9" not in shown
        assert "swarm/mesh (5)" in shown
        assert all(short_id(p) in shown for p in PEERS)


async def test_sessions_pane_shows_stage_counts_and_countdown() -> None:
    app = make_app(ScriptedLink())
    async with app.run_test(size=SIZE) as pilot:
        app.feed(session(stage="advertise", executors=[], verifiers=[], responses={}, scores={}))
        table = app.sessions_pane
        await wait_for(pilot, lambda: table.row_count == 1)
        row = row_text(table, "task-1")
        assert row[1] == SEPARATOR.join(("Adv", "Exe", "Ver", "Fin"))
        assert row[2] == "j4 r0/0 s0/0"
        assert row[3].endswith("s") and 25 < float(row[3][:-1]) <= 30  # deadline countdown

        app.feed(session(stage="verify"))
        await wait_for(pilot, lambda: row_text(table, "task-1")[2] == "j4 r1/2 s1/2")
        # The running stage is drawn highlighted, the finished ones green.
        line = table.get_row("task-1")[1]
        styles = {line.plain[s.start : s.end]: str(s.style) for s in line.spans}
        assert "reverse" in styles["Ver"] and "green" in styles["Adv"]

        app.feed(result())
        await wait_for(pilot, lambda: "✔" in row_text(table, "task-1")[1])
        assert row_text(table, "task-1")[3] == "-"  # no deadline once done


async def test_scores_pane_fills_live_marks_missing_and_highlights_winner() -> None:
    app = make_app(ScriptedLink())
    async with app.run_test(size=SIZE) as pilot:
        app.feed(session())
        matrix = app.scores_pane.matrix
        await wait_for(pilot, lambda: matrix.row_count == 2, what="matrix rows")
        assert row_text(matrix, EXECUTORS[0])[1:] == ["0.91", "·", "-"]

        app.feed(result())
        await wait_for(pilot, lambda: row_text(matrix, EXECUTORS[0])[-1] == "0.90")
        winner_row = row_text(matrix, EXECUTORS[0])
        assert winner_row[0].startswith("★") and winner_row[1:3] == ["0.91", "0.89"]
        loser_row = row_text(matrix, EXECUTORS[1])
        assert loser_row[1:] == ["0.20", "✗", "0.20"]  # the silent verifier is missing, not 0
        line = str(app.scores_pane.winner_line.render())
        assert short_id(EXECUTORS[0]) in line and "Paris is the capital" in line

        # The winning text opens in full.
        await pilot.press("w")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "TextModal")
        shown = str(app.screen.query_one("#viewer-text").render())
        assert "Prompt: What is the capital of France?" in shown
        assert f"Winner {short_id(EXECUTORS[0])} (avg 0.90):\nParis is the capital" in shown
        assert f"- {short_id(EXECUTORS[1])} (avg 0.20): (no answer received)" in shown
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ != "TextModal")


async def test_scores_follow_the_newest_session_until_the_user_picks_one() -> None:
    app = make_app(ScriptedLink())
    async with app.run_test(size=SIZE) as pilot:
        app.feed(session("task-1"), session("task-2", stage="execute"))
        await wait_for(pilot, lambda: app.sessions_pane.row_count == 2)
        assert app.selected_task == "task-2"
        app.sessions_pane.focus()
        await pilot.press("up")
        await wait_for(pilot, lambda: app.selected_task == "task-1", what="user selection")
        app.feed(session("task-3", stage="advertise"))
        await wait_for(pilot, lambda: app.sessions_pane.row_count == 3)
        assert app.selected_task == "task-1"  # pinned by the user
        assert app.scores_pane.border_title == "Scores · task-1"


async def test_log_pane_filters_and_errors_stand_out() -> None:
    app = make_app(ScriptedLink())
    async with app.run_test(size=SIZE) as pilot:
        app.feed(
            ready(),
            {
                "event": "message",
                "topic": "chat",
                "sender": PEERS[0],
                "kind": "text",
                "text": "hello swarm",
            },
            {"event": "error", "message": "judge timed out", "source": "slm"},
            {
                "event": "rejected",
                "reason": "bad_signature",
                "sender": PEERS[1],
                "topic": "swarm/mesh",
                "detail": "",
            },
        )
        log = app.log_pane
        await wait_for(pilot, lambda: any("judge timed out" in t for t in log.visible_text()))
        from console.panes.log import render_entry

        error = next(e for e in app.state.log if e.level == "error")
        assert "red" in str(render_entry(error).spans[-1].style)

        await pilot.press("slash")
        await pilot.press(*"hello")
        await wait_for(pilot, lambda: log.filter_text == "hello")
        assert log.visible_text() == ["[chat] " + short_id(PEERS[0]) + " text: hello swarm"]
        assert log.lines.line_count == 1
        log.filter_input.value = "error"
        await wait_for(pilot, lambda: log.visible_text() == ["judge timed out"])


def table_lines(table: DataTable) -> list[str]:
    """The table's lines as drawn now."""
    return [table.render_line(y).text for y in range(table.size.height)]


async def test_tables_redraw_changed_cells_and_theme_changes() -> None:
    app = make_app(ScriptedLink())
    async with app.run_test(size=SIZE) as pilot:
        info = {"event": "peer_info", "peer_id": PEERS[0], "rtt_ms": 3.0, "state": "connected"}
        app.feed(info, {**info, "peer_id": PEERS[1], "rtt_ms": 4.0})
        table = app.peers_pane
        await wait_for(pilot, lambda: any("4ms" in line for line in table_lines(table)))
        lines = table_lines(table)
        first = lines[next(i for i, line in enumerate(lines) if short_id(PEERS[0]) in line) + 1]
        assert "3ms" in first  # the line under the peer's id
        app.feed({**info, "rtt_ms": 7.0})  # same width: only the cell's content changes
        await wait_for(pilot, lambda: any("7ms" in line for line in table_lines(table)))
        assert any("4ms" in line for line in table_lines(table))  # the other row as it was
        before = table.render_line(1)
        await pilot.press("t")
        await pilot.pause()
        after = table.render_line(1)
        assert after.text == before.text and list(after) != list(before)  # redrawn in new colours


def shown_lines(view: LogView) -> list[str]:
    """The log view's lines as drawn now (what the terminal shows)."""
    return [view.render_line(y).text.rstrip() for y in range(view.scrollable_content_region.height)]


async def test_log_keeps_every_line_of_a_burst_wrapped_and_scrollable() -> None:
    app = make_app(ScriptedLink())
    async with app.run_test(size=SIZE) as pilot:
        long = "word " * 60  # 300 characters: wraps over several lines at this width
        table = "peer    rtt\nabc123  3ms\ndef456  4ms"
        app.feed(
            *(
                {"event": "log", "level": "info", "logger": "t", "message": f"l{i}"}
                for i in range(1500)
            ),
            {"event": "log", "level": "info", "logger": "t", "message": long.strip()},
            {"event": "command_output", "command": "peers", "text": table, "ok": True},
        )
        view = app.log_pane.lines
        await wait_for(pilot, lambda: any("def456" in line for line in shown_lines(view)))
        entries = view.entries
        assert len(entries) == SCREEN_LINES and entries[-3].text == "l1499"
        width = view.scrollable_content_region.width
        wrapped = len(render_entry(entries[-2]).wrap(app.console, width))
        assert wrapped > 1
        # every entry one line, except the long one (wrapped) and the table (a line per row)
        assert view.line_count == SCREEN_LINES - 2 + wrapped + 4
        bottom = shown_lines(view)
        assert bottom[-1].endswith("def456  4ms") and bottom[-4].endswith("peers:")
        assert " ".join(bottom[-4 - wrapped :]).count("word") == 60
        # the scrollbar knows every line, and the view follows the end
        assert view.vertical_scrollbar.window_virtual_size == view.line_count
        assert view.scroll_y == view.max_scroll_y > 0

        view.scroll_to(y=0, animate=False, immediate=True)
        await pilot.pause()
        top = shown_lines(view)
        assert top[0].endswith(f"t: {entries[0].text}") and entries[0].text == "l502"
        assert top[1].endswith("t: l503")


async def test_log_growing_batch_by_batch_follows_the_end() -> None:
    app = make_app(ScriptedLink())
    async with app.run_test(size=SIZE) as pilot:
        view = app.log_pane.lines
        for batch in range(5):
            app.feed(
                *(
                    {"event": "log", "level": "info", "logger": "t", "message": f"g{batch}-{i}"}
                    for i in range(20)
                )
            )
            await wait_for(pilot, lambda b=batch: shown_lines(view)[-1].endswith(f"t: g{b}-19"))
            assert view.vertical_scrollbar.window_virtual_size == view.line_count
            assert view.scroll_y == view.max_scroll_y
        assert view.line_count == len(view.entries) > 100 - view.size.height


async def test_bootstrap_role_shows_peers_and_mesh_only() -> None:
    app = make_app(ScriptedLink(), role="bootstrap")
    async with app.run_test(size=SIZE) as pilot:
        app.feed(ready(LEADER, role="bootstrap", name="bootstrap"))
        await pilot.pause()
        assert app.peers_pane.display and app.mesh_pane.region.height > 0
        assert app.sessions_pane.region.height == 0 and app.scores_pane.region.height == 0
        await wait_for(pilot, lambda: "bootstrap" in app.title)
        shown = {b.binding.action for b in app.active_bindings.values() if b.enabled}
        await pilot.press("p")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "Screen"  # no pipe modal on a bootstrap
        assert "toggle_mesh" in shown and "pipe" not in shown


async def test_simulated_backend_is_labelled_in_header_and_banner_shown() -> None:
    app = make_app(
        ScriptedLink(),
        backend="sim/honest",
        simulated=True,
        banner="Ollama not reachable: SIMULATED backend",
    )
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.sub_title.startswith("SIMULATED sim/honest")
        banner = app.query_one("#banner")
        assert banner.display and "SIMULATED" in str(banner.render())


async def test_80x24_keeps_every_pane_usable_and_quit_visible() -> None:
    from textual.widgets._footer import FooterKey

    app = make_app(
        ScriptedLink(),
        backend="sim/honest",
        simulated=True,
        banner="SIMULATED backend: no Ollama at http://127.0.0.1:11434. For real answers: "
        "`ollama serve`, `ollama pull qwen2.5:1.5b` (or --ollama-host URL).",
    )
    async with app.run_test(size=(80, 24)) as pilot:
        app.feed(session(), result())
        matrix = app.scores_pane.matrix
        await wait_for(pilot, lambda: matrix.row_count == 2)
        await pilot.pause()
        for pane in (app.peers_pane, app.mesh_pane, app.sessions_pane, app.log_pane):
            assert pane.region.height >= 4, pane
        assert matrix.region.height >= 3  # header + both executors
        assert app.scores_pane.winner_line.region.height >= 1
        assert app.query_one("#banner").region.height == 2
        keys = {k.action: k for k in app.query(FooterKey)}
        for action in ("app.pipe", "app.quit", "app.help"):
            key = keys.get(action) or keys[action.removeprefix("app.")]
            assert key.region.right <= 80, action


async def test_a_command_output_taller_than_the_log_shows_from_its_top() -> None:
    app = make_app(ScriptedLink())
    async with app.run_test(size=SIZE) as pilot:
        view = app.log_pane.lines
        await wait_for(pilot, lambda: view.size.height > 0, what="the log laid out")
        tall = "\n".join(f"command-{i:02d}  what it does" for i in range(3 * view.size.height))
        app.feed({"event": "command_output", "command": "help", "text": tall, "ok": True})
        await wait_for(pilot, lambda: any("command-00" in line for line in shown_lines(view)))
        assert "help:" in shown_lines(view)[0], "the top of the output is on screen"
        app.feed({"event": "log", "level": "INFO", "logger": "node.x", "message": "later"})
        await wait_for(pilot, lambda: any(e.text == "later" for e in view.entries))
        await pilot.pause()
        assert "help:" in shown_lines(view)[0], "a new line does not scroll the output away"
        view.focus()
        await pilot.press("end")
        await wait_for(pilot, lambda: any("later" in line for line in shown_lines(view)))
