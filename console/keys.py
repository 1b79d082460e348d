"""The console's keys: the bindings table and what each key does.

:class:`KeyActions` is the App layer that holds them; :class:`console.app.RnetConsole` builds on
it and provides what the actions use (the link, the panes, the state, ``run_command``). Every
action that touches the node runs an interpreter command line, like the command input does.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.binding import Binding

from console.modals import AdvertiseModal, HelpModal, PipeModal, SlmModal, TextModal
from console.state import short_id
from themes import next_theme

if TYPE_CHECKING:
    from console.link import NodeLink
    from console.panes import CommandInput, LogPane, MeshPane, SessionsPane
    from console.settings import Settings
    from console.state import ConsoleState, SessionView


def _binding(
    key: str, action: str, description: str, tooltip: str, *, id: str | None = None, **kw: Any
) -> Binding:
    return Binding(key, action, description, id=id or action, tooltip=tooltip, **kw)


class KeyActions(App[int]):
    """The App's key bindings and actions (an abstract layer: ``RnetConsole`` is the App)."""

    # Footer order = importance (an 80-column footer shows the first eight). Every binding has
    # an id (the keymap in console.toml refers to it) and a tooltip (footer hover and `?`).
    BINDINGS = [
        _binding("p", "pipe", "Pipe", "Run a whole session: asks N and a prompt, runs `pipe N`"),
        _binding("a", "advertise", "Advertise", "Advertise a session (topic, prompt): `adv`"),
        _binding("k", "ack", "Ack", "Assign roles in the selected (or last) session: `ack`"),
        _binding("f", "finalize", "Finalize", "Tally the selected (or last) session: `finalize`"),
        _binding("s", "slm", "SLM", "Ask this node's own model: `slm <prompt>`"),
        _binding("w", "view_text", "Winner", "Show the selected session's answers in full"),
        _binding("question_mark", "help", "Help", "Keys and commands"),
        _binding("q", "quit", "Quit", "Stop the node (and, under `rnet up`, the swarm) and quit"),
        _binding("colon,i", "command", "Command", "Type an interpreter command (`help`)"),
        _binding("slash", "filter_log", "Filter", "Filter the log (text or a level)"),
        _binding("m", "toggle_mesh", "Mesh view", "Mesh pane: local view or the bootstrap's"),
        _binding("t", "theme", "Theme", "Switch between the dark and the light theme"),
        _binding(
            "ctrl+c", "quit", "Quit", "Stop and quit", id="quit_ctrl_c", show=False, priority=True
        ),
        _binding(
            "escape", "leave_input", "Back", "Leave the command input or the filter", show=False
        ),
    ]

    # What the actions use, provided by RnetConsole.
    link: NodeLink
    role: str
    settings: Settings
    save_settings: bool
    state: ConsoleState
    default_providers: int
    selected_task: str | None
    sessions: tuple[SessionView, ...]
    selected_session: SessionView | None
    mesh_pane: MeshPane
    command_input: CommandInput
    log_pane: LogPane
    sessions_pane: SessionsPane

    def run_command(self, line: str | None) -> None:
        raise NotImplementedError

    def _request_refresh(self, dirty: set[str]) -> None:
        raise NotImplementedError

    SESSION_ACTIONS = frozenset({"advertise", "ack", "finalize", "pipe", "slm", "view_text"})

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The bootstrap runs no model and takes no session role: its footer hides those keys."""
        return not (self.role == "bootstrap" and action in self.SESSION_ACTIONS)

    def _target_task(self) -> str | None:
        task = self.selected_task or (self.sessions[-1].task if self.sessions else None)
        if task is None:
            self.notify("No session yet: press a to advertise or p to pipe.", severity="warning")
        return task

    def action_advertise(self) -> None:
        defaults = {"topic": f"task-{secrets.token_hex(3)}"}
        self.push_screen(AdvertiseModal(defaults), self.run_command)

    def action_ack(self) -> None:
        task = self._target_task()
        if task:
            self.run_command(f"ack {task}")

    def action_finalize(self) -> None:
        task = self._target_task()
        if task:
            self.run_command(f"finalize {task}")

    def action_pipe(self) -> None:
        self.push_screen(PipeModal({"count": str(self.default_providers)}), self.run_command)

    def action_slm(self) -> None:
        self.push_screen(SlmModal(), self.run_command)

    def action_view_text(self) -> None:
        view = self.selected_session
        if view is None or not view.winning_text:
            self.notify("No winning answer to show yet.", severity="warning")
            return
        title = f"{view.task} · winner {short_id(view.winner)}"
        self.push_screen(TextModal(title, view.answers_text()))

    def action_toggle_mesh(self) -> None:
        self.mesh_pane.show_bootmesh = not self.mesh_pane.show_bootmesh

    def action_command(self) -> None:
        self.command_input.focus()

    def action_filter_log(self) -> None:
        self.log_pane.open_filter()

    def action_leave_input(self) -> None:
        self.sessions_pane.focus()

    def action_theme(self) -> None:
        self.theme = next_theme(self.theme)
        self.settings.theme = self.theme
        if self.save_settings:
            try:
                self.settings.save()
            except OSError as exc:
                self.state.note(f"cannot save the theme choice: {exc}", "warning")
                self._request_refresh({"log"})

    def action_help(self) -> None:
        keys = []
        for binding in self._binding_list():
            keys.append(
                (
                    self.get_key_display(binding),
                    binding.tooltip or binding.description,
                    binding.id or binding.action,
                )
            )
        self.push_screen(HelpModal(keys, self.link.command_names()))

    def _binding_list(self) -> list[Binding]:
        """The App's bindings with the keymap of console.toml applied (what the keys really are
        now), in declaration order. Public API only: the declared ``BINDINGS`` and our settings
        (Textual applies a keymap to copies of its private binding maps)."""
        keymap = self.settings.keymap
        seen: dict[str, Binding] = {}
        for cls in type(self).__mro__:
            for binding in vars(cls).get("BINDINGS", ()):
                if not isinstance(binding, Binding) or not binding.id or not binding.show:
                    continue
                if self.check_action(binding.action, ()):
                    key = keymap.get(binding.id, binding.key)
                    seen.setdefault(binding.id, dataclasses.replace(binding, key=key))
        return list(seen.values())

    async def action_quit(self) -> None:
        self.exit(0)
