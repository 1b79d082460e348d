"""Command input: the interpreter's command line with history (up/down) and name completion."""

from __future__ import annotations

from collections.abc import Iterable

from textual.binding import Binding
from textual.suggester import Suggester
from textual.widgets import Input

from console.messages import CommandSubmitted
from console.textual_compat import input_suggestion

HISTORY_LIMIT = 200


class CommandSuggester(Suggester):
    """Suggests the rest of a command *name* (the first word); arguments are the user's."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.names: list[str] = sorted(set(names))

    async def get_suggestion(self, value: str) -> str | None:
        if not value or " " in value:
            return None
        for name in self.names:
            if name.startswith(value) and name != value:
                return name + " "
        return None


class CommandInput(Input):
    """Posts ``CommandSubmitted`` on Enter; up/down walk the history; Tab completes the name."""

    BINDINGS = [
        Binding(
            "up",
            "history(-1)",
            "Previous",
            show=False,
            id="command.history_previous",
            tooltip="Previous command from the history",
        ),
        Binding(
            "down",
            "history(1)",
            "Next",
            show=False,
            id="command.history_next",
            tooltip="Next command from the history",
        ),
        Binding(
            "tab",
            "complete",
            "Complete",
            show=False,
            id="command.complete",
            tooltip="Complete the command name",
        ),
    ]

    def __init__(
        self,
        names: Iterable[str] = (),
        placeholder: str = "command (help, pipe 3 <prompt>, adv <topic> <prompt>…) — Esc leaves",
        **kwargs: object,
    ) -> None:
        self.suggester_names = CommandSuggester(names)
        super().__init__(
            placeholder=placeholder,
            suggester=self.suggester_names,
            **kwargs,  # type: ignore[arg-type]
        )
        self.history: list[str] = []
        self._history_pos = 0
        self._draft = ""

    def set_command_names(self, names: Iterable[str]) -> None:
        """Replace the completion list (the interpreter's registered commands)."""
        self.suggester_names.names = sorted(set(names))

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        if self._history_pos == len(self.history):
            self._draft = self.value
        self._history_pos = max(0, min(len(self.history), self._history_pos + step))
        if self._history_pos == len(self.history):
            self.value = self._draft
        else:
            self.value = self.history[self._history_pos]
        self.cursor_position = len(self.value)

    def action_complete(self) -> None:
        suggestion = input_suggestion(self)
        if suggestion and suggestion != self.value:
            self.value = suggestion
            self.cursor_position = len(self.value)
            return
        # No suggestion (e.g. empty input): Tab keeps its usual meaning.
        self.screen.focus_next()

    async def action_submit(self) -> None:
        line = self.value.strip()
        if not line:
            return
        if not self.history or self.history[-1] != line:
            self.history.append(line)
            del self.history[:-HISTORY_LIMIT]
        self._history_pos = len(self.history)
        self._draft = ""
        self.value = ""
        self.post_message(CommandSubmitted(line))
