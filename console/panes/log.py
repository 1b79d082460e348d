"""Log pane: every event as a line, filterable; errors and rejections stand out."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Input, RichLog

from console.state import LOG_LIMIT, LogEntry

LEVEL_STYLES = {
    "debug": "dim",
    "info": "",
    "warning": "yellow",
    "error": "bold red",
    "command": "bold cyan",
}
#: Lines kept on screen; the full history (LOG_LIMIT) stays searchable through the filter.
SCREEN_LINES = 1000


def render_entry(entry: LogEntry) -> Text:
    stamp = time.strftime("%H:%M:%S", time.localtime(entry.ts))
    style = LEVEL_STYLES.get(entry.level, "")
    text = Text()
    text.append(f"{stamp} ", style="dim")
    if entry.level == "error":
        text.append("✗ ", style="bold red")
    elif entry.level == "warning":
        text.append("! ", style="yellow")
    text.append(f"{entry.source}: ", style=style or "dim")
    if "\n" in entry.text:
        # Tables (peers, help) start on their own line so their columns stay aligned.
        for line in entry.text.splitlines():
            text.append("\n  " + line, style=style)
    else:
        text.append(entry.text, style=style)
    return text


class LogPane(Vertical):
    """Append-only view of log entries; ``filter_text`` re-renders the matching history."""

    filter_text: reactive[str] = reactive("", init=False)
    """Case-insensitive substring (or a level name) the shown lines must match."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.border_title = "Log"
        self._history: deque[LogEntry] = deque(maxlen=LOG_LIMIT)

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter the log (text or level: error, warning…)", id="log-filter")
        yield RichLog(id="log-lines", max_lines=SCREEN_LINES, wrap=True, markup=False)

    @property
    def lines(self) -> RichLog:
        return self.query_one("#log-lines", RichLog)

    @property
    def filter_input(self) -> Input:
        return self.query_one("#log-filter", Input)

    def add_entries(self, entries: Iterable[LogEntry]) -> None:
        """Append new entries (a batch per repaint: one write call per visible line)."""
        entries = list(entries)
        self._history.extend(entries)
        shown = [e for e in entries if e.matches(self.filter_text)][-SCREEN_LINES:]
        self._write(shown)

    def _write(self, entries: list[LogEntry]) -> None:
        # One write per batch: RichLog renders each write separately (~1 ms a call), so a burst
        # of hundreds of lines costs one render instead of hundreds.
        if entries:
            self.lines.write(Text("\n").join(render_entry(e) for e in entries))

    def visible_text(self) -> list[str]:
        """The matching lines as plain text (for tests and the help screen)."""
        return [e.text for e in self._history if e.matches(self.filter_text)][-SCREEN_LINES:]

    def open_filter(self) -> None:
        self.add_class("-filtering")
        self.filter_input.focus()

    def watch_filter_text(self, needle: str) -> None:
        self.lines.clear()
        self._write([e for e in self._history if e.matches(needle)][-SCREEN_LINES:])
        self.border_title = f"Log · filter: {needle}" if needle else "Log"

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "log-filter":
            event.stop()
            self.filter_text = event.value.strip()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "log-filter":
            event.stop()
            if not event.value.strip():
                self.remove_class("-filtering")
            self.lines.focus()
