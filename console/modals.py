"""Modal screens: the forms behind ``a``/``p``/``s``, the help screen and a text viewer.

Forms dismiss with the interpreter command line to run (or None when cancelled); the App runs it
like any typed command, so keys and the command input share one path.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class FormModal(ModalScreen[str | None]):
    """A small form: labelled inputs, Enter on the last one (or OK) submits, Esc cancels."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="modal.cancel", tooltip="Close without running"),
    ]

    heading: str = ""
    fields: tuple[tuple[str, str, str], ...] = ()  # (id, label, default)

    def __init__(self, defaults: dict[str, str] | None = None) -> None:
        super().__init__()
        self.defaults = defaults or {}

    def compose(self) -> ComposeResult:
        with Vertical(classes="form"):
            yield Label(self.heading, classes="form-title")
            for field_id, label, default in self.fields:
                yield Label(label)
                yield Input(value=self.defaults.get(field_id, default), id=field_id)
            yield Label("", id="form-error")
            with Horizontal(classes="form-buttons"):
                yield Button("Run", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def value(self, field_id: str) -> str:
        return self.query_one(f"#{field_id}", Input).value.strip()

    def build_command(self) -> str:
        """The command line for the current values; raise ValueError with a hint if invalid."""
        raise NotImplementedError

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _submit(self) -> None:
        try:
            line = self.build_command()
        except ValueError as exc:
            self.query_one("#form-error", Label).update(Text(str(exc), style="bold red"))
            return
        self.dismiss(line)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        inputs = list(self.query(Input))
        if event.input is inputs[-1]:
            self._submit()
        else:
            self.focus_next()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self._submit()
        else:
            self.dismiss(None)


class AdvertiseModal(FormModal):
    """``a``: advertise a session (topic, prompt) -> ``adv <topic> <prompt>``."""

    heading = "Advertise a session"
    AUTO_FOCUS = "#prompt"  # the topic comes prefilled
    fields = (("topic", "Topic (task id)", ""), ("prompt", "Prompt", ""))

    def build_command(self) -> str:
        topic, prompt = self.value("topic"), self.value("prompt")
        if not topic or any(c.isspace() for c in topic):
            raise ValueError("topic: one word, e.g. task-1")
        return f"adv {shlex.quote(topic)} {shlex.quote(prompt)}" if prompt else f"adv {topic}"


class PipeModal(FormModal):
    """``p``: run a whole session -> ``pipe <N> <prompt>``."""

    heading = "Pipe a prompt through the swarm"
    AUTO_FOCUS = "#prompt"  # N comes prefilled
    fields = (("count", "Providers (N)", "3"), ("prompt", "Prompt", ""))

    def build_command(self) -> str:
        count, prompt = self.value("count"), self.value("prompt")
        if not count.isdigit() or int(count) < 2:
            raise ValueError("providers: a whole number >= 2 (one executor, one verifier)")
        if not prompt:
            raise ValueError("prompt: what should the swarm answer?")
        return f"pipe {int(count)} {shlex.quote(prompt)}"


class SlmModal(FormModal):
    """``s``: ask this node's own model -> ``slm <prompt>``."""

    heading = "Ask this node's model"
    fields = (("prompt", "Prompt", ""),)

    def build_command(self) -> str:
        prompt = self.value("prompt")
        if not prompt:
            raise ValueError("prompt: what should the model answer?")
        return f"slm {shlex.quote(prompt)}"


class TextModal(ModalScreen[None]):
    """A scrollable viewer for a long text (an executor's answer)."""

    BINDINGS = [
        Binding("escape,q,enter", "close", "Close", id="text.close", tooltip="Close the viewer"),
    ]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.body = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="viewer"):
            yield Label(self.title_text, classes="form-title")
            with VerticalScroll():
                yield Static(Text(self.body), id="viewer-text")

    def action_close(self) -> None:
        self.dismiss(None)


class HelpModal(ModalScreen[None]):
    """``?``: the keys (from the live bindings, so keymap overrides show) and the commands."""

    BINDINGS = [
        Binding(
            "escape,q,question_mark", "close", "Close", id="help.close", tooltip="Close the help"
        ),
    ]

    def __init__(self, keys: Iterable[tuple[str, str, str]], commands: Iterable[str]) -> None:
        super().__init__()
        self.keys = list(keys)
        self.commands = list(commands)

    def compose(self) -> ComposeResult:
        text = Text()
        text.append("Keys\n", style="bold underline")
        for key, description, binding_id in self.keys:
            text.append(f"  {key:>8}  ", style="bold")
            text.append(description)
            text.append(f"  [{binding_id}]\n", style="dim")
        text.append(
            '\nRebind keys in console.toml ([keymap] binding-id = "key"); see README.\n',
            style="dim",
        )
        text.append(
            "\nCommands (type : to enter one; `help` lists usage)\n", style="bold underline"
        )
        text.append("  " + " ".join(self.commands) + "\n")
        with Vertical(classes="viewer"):
            yield Label("rnet console — help", classes="form-title")
            with VerticalScroll():
                yield Static(text, id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)
