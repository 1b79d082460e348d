"""Keys, modals, the command input (history, completion, usage on bad input), themes, keymap."""

from __future__ import annotations

from pathlib import Path

from console.app import make_app
from console.link import ScriptedLink
from console.settings import Settings
from tests.console.helpers import session, wait_for

SIZE = (120, 40)


async def test_pipe_key_opens_modal_and_runs_pipe_command() -> None:
    link = ScriptedLink()
    app = make_app(link)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PipeModal")
        await pilot.press(*"What is 2+2?")  # the prompt has focus; N keeps its default
        await pilot.press("enter")
        await wait_for(pilot, lambda: link.commands == ["pipe 3 'What is 2+2?'"])
        assert app.screen.__class__.__name__ == "Screen"


async def test_pipe_modal_rejects_a_bad_count_and_cancel_runs_nothing() -> None:
    link = ScriptedLink()
    app = make_app(link)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PipeModal")
        app.screen.query_one("#count").value = "one"
        app.screen.query_one("#prompt").value = "hi"
        await pilot.click("#ok")
        await wait_for(
            pilot, lambda: "whole number" in str(app.screen.query_one("#form-error").render())
        )
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "Screen")
        assert link.commands == []


async def test_advertise_then_ack_and_finalize_act_on_the_session() -> None:
    link = ScriptedLink()
    app = make_app(link)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "AdvertiseModal")
        app.screen.query_one("#topic").value = "task-7"
        app.screen.query_one("#prompt").value = "Name a prime"
        await pilot.click("#ok")
        await wait_for(pilot, lambda: link.commands == ["adv task-7 'Name a prime'"])
        # The node answers with a session snapshot; k and f act on it.
        link.emit(session("task-7", stage="advertise"))
        await wait_for(pilot, lambda: app.selected_task == "task-7")
        await pilot.press("k")
        await pilot.press("f")
        await wait_for(pilot, lambda: link.commands[1:] == ["ack task-7", "finalize task-7"])


async def test_ack_without_a_session_says_so_and_runs_nothing() -> None:
    link = ScriptedLink()
    app = make_app(link)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("k")
        await pilot.pause()
        assert link.commands == []
        assert any("No session yet" in n.message for n in app._notifications)


async def test_slm_key_runs_slm_and_streams_the_answer_into_the_log() -> None:
    link = ScriptedLink()
    app = make_app(link)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "SlmModal")
        await pilot.press(*"hi")
        await pilot.press("enter")
        await wait_for(pilot, lambda: link.commands == ["slm hi"])
        link.emit({"event": "slm_chunk", "text": "Hello ", "done": False})
        link.emit({"event": "slm_chunk", "text": "there.", "done": False})
        await wait_for(pilot, lambda: app.log_pane.border_subtitle == "slm: …Hello there.")
        link.emit({"event": "slm_chunk", "text": "", "done": True})
        link.emit({"event": "command_output", "command": "slm", "text": "Hello there.", "ok": True})
        await wait_for(pilot, lambda: "Hello there." in app.log_pane.visible_text())
        assert app.log_pane.border_subtitle == ""
        assert app.log_pane.visible_text().count("Hello there.") == 1


async def test_bad_command_shows_its_usage_in_the_log() -> None:
    link = ScriptedLink()
    app = make_app(link)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("colon")
        assert app.focused is app.command_input
        await pilot.press(*"pipe", "enter")
        await wait_for(
            pilot, lambda: "usage: pipe <provider_count> [prompt]" in app.log_pane.visible_text()
        )
        usage = next(e for e in app.state.log if e.text.startswith("usage:"))
        assert usage.level == "error"
        assert "> pipe" in app.log_pane.visible_text()  # the command is echoed


async def test_command_history_and_completion() -> None:
    link = ScriptedLink()
    app = make_app(link)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("colon")
        command = app.command_input
        for line in ("peers", "topics"):
            await pilot.press(*line, "enter")
        await wait_for(pilot, lambda: link.commands == ["peers", "topics"])
        await pilot.press("up")
        assert command.value == "topics"
        await pilot.press("up")
        assert command.value == "peers"
        await pilot.press("down", "down")
        assert command.value == ""
        await pilot.press(*"fin")
        await wait_for(pilot, lambda: command._suggestion == "finalize ")
        await pilot.press("tab")
        assert command.value == "finalize "
        await pilot.press("escape")
        assert app.focused is app.sessions_pane


async def test_theme_switch_persists_across_runs(config_dir: Path) -> None:
    app = make_app(ScriptedLink())
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "rnet-dark"
        await pilot.press("t")
        assert app.theme == "rnet-light"
    assert 'theme = "rnet-light"' in (config_dir / "console.toml").read_text()

    again = make_app(ScriptedLink())
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert again.theme == "rnet-light"
        assert not again.current_theme.dark


async def test_keymap_from_config_overrides_a_binding(config_dir: Path) -> None:
    Settings(keymap={"pipe": "x"}).save()
    link = ScriptedLink()
    app = make_app(link)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "Screen"  # p no longer pipes
        await pilot.press("x")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PipeModal")
        await pilot.press("escape")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "HelpModal")
        text = str(app.screen.query_one("#help-text").render())
        pipe_line = next(line for line in text.splitlines() if "[pipe]" in line)
        assert pipe_line.lstrip().startswith("x"), "help shows the key the keymap set"


async def test_broken_config_file_is_reported_not_fatal(config_dir: Path) -> None:
    config_dir.mkdir(parents=True)
    (config_dir / "console.toml").write_text("theme = [unclosed\n")
    app = make_app(ScriptedLink())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: any("ignoring" in t for t in app.log_pane.visible_text()))
        assert app.theme == "rnet-dark"


async def test_help_lists_keys_with_their_descriptions() -> None:
    app = make_app(ScriptedLink())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "HelpModal")
        text = str(app.screen.query_one("#help-text").render())
        assert "Run a whole session" in text and "[pipe]" in text  # the id for console.toml
        await pilot.press("escape")


async def test_node_start_failure_is_shown_not_raised() -> None:
    class BrokenLink(ScriptedLink):
        async def start(self) -> None:
            raise RuntimeError("port 8888 already in use")

    app = make_app(BrokenLink())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: any("port 8888" in t for t in app.log_pane.visible_text()))
        banner = app.query_one("#banner")
        assert banner.display and "port 8888" in str(banner.render())


async def test_preflight_problem_shows_a_banner() -> None:
    class NoModelLink(ScriptedLink):
        async def preflight(self) -> str | None:
            return "model qwen2.5:1.5b is not pulled — run `ollama pull qwen2.5:1.5b`"

    app = make_app(NoModelLink())
    async with app.run_test(size=SIZE) as pilot:
        banner = app.query_one("#banner")
        await wait_for(pilot, lambda: banner.display, what="banner shown")
        assert "ollama pull" in str(banner.render())


async def test_quit_closes_the_node() -> None:
    link = ScriptedLink()
    app = make_app(link)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: link.started)
        await pilot.press("q")
    assert link.closed
    assert app.return_code == 0
