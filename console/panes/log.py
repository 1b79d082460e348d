"""Log pane: every event as a line, filterable; errors and rejections stand out.

The lines live in ``LogView``, which lays them out lazily: an entry is wrapped and drawn only
when it scrolls into view, so a burst of hundreds of lines costs a list append per line and one
screenful of rendering, while every line stays in the pane and scrollable.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.cache import LRUCache
from textual.containers import Vertical
from textual.events import Resize
from textual.geometry import Region, Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input

from console.state import LOG_LIMIT, LogEntry
from console.textual_compat import set_scrollbar_size

LEVEL_STYLES = {
    "debug": "dim",
    "info": "",
    "warning": "yellow",
    "error": "bold red",
    "command": "bold cyan",
}
#: Entries kept in the pane; the full history (LOG_LIMIT) stays searchable through the filter.
SCREEN_LINES = 1000
#: Cells before the source: ``HH:MM:SS `` and, for errors and warnings, a mark and a space.
STAMP_CELLS = 9
MARKED_LEVELS = frozenset({"error", "warning"})


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


def one_line_cells(entry: LogEntry) -> int | None:
    """Cells ``render_entry`` needs on one line, or None when only rendering can tell (several
    lines, tabs, control or wide characters)."""
    body = f"{entry.source}: {entry.text}"
    if not (body.isascii() and body.isprintable()):
        return None
    return STAMP_CELLS + (2 if entry.level in MARKED_LEVELS else 0) + len(body)


class LogView(ScrollView, can_focus=True):
    """The pane's lines: entries wrapped to the width, drawn only when on screen.

    ``_rows`` has one ``(entry, line of that entry)`` per screen line, so scrolling anywhere
    costs a lookup; an entry's height comes from its length (one line when it fits, the common
    case) or, for the rest, from rendering it once.
    """

    DEFAULT_CSS = """
    LogView {
        background: $surface;
        color: $foreground;
        overflow-y: scroll;
        &:focus {
            background-tint: $foreground 5%;
        }
    }
    """

    def __init__(self, max_entries: int = SCREEN_LINES, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.max_entries = max_entries
        self._entries: deque[LogEntry] = deque()
        self._heights: deque[int] = deque()
        self._rows: list[tuple[LogEntry, int]] = []
        self._width = 0  # the width _rows is laid out for (0: not known yet)
        self._strips: LRUCache[tuple[LogEntry, int], list[Strip]] = LRUCache(1024)
        self._line_style = Style()
        # The first row of an entry taller than the view (``help``), shown from its top rather
        # than followed to its end, until the user scrolls.
        self._hold: int | None = None

    @property
    def line_count(self) -> int:
        """Screen lines the entries take at the current width."""
        return len(self._rows)

    @property
    def entries(self) -> list[LogEntry]:
        """The entries in the view, oldest first (at most ``max_entries``)."""
        return list(self._entries)

    def add(self, entries: Iterable[LogEntry]) -> None:
        """Append entries and follow the end; only the lines that end up on screen are drawn."""
        new = list(entries)[-self.max_entries :]
        if not new:
            return
        self._entries.extend(new)
        if self._width:
            for entry in new:
                first = len(self._rows)
                self._append_rows(entry)
                if self._heights[-1] > max(1, self.size.height):
                    self._hold = first
        dropped = 0
        while len(self._entries) > self.max_entries:
            self._entries.popleft()
            dropped += self._heights.popleft() if self._width else 0
        if dropped:
            del self._rows[:dropped]
            if self._hold is not None:
                self._hold = self._hold - dropped if self._hold >= dropped else None
        self._update_size()

    def clear(self) -> None:
        self._hold = None
        self._entries.clear()
        self._heights.clear()
        self._rows.clear()
        self._update_size()

    def _append_rows(self, entry: LogEntry) -> None:
        height = self._height(entry)
        self._heights.append(height)
        self._rows.extend((entry, i) for i in range(height))

    def _height(self, entry: LogEntry) -> int:
        cells = one_line_cells(entry)
        if cells is not None and cells <= self._width:
            return 1
        return len(self._render(entry))

    def _render(self, entry: LogEntry) -> list[Strip]:
        key = (entry, self._width)
        strips = self._strips.get(key)
        if strips is None:
            text = render_entry(entry)
            console = self.app.console
            cells = one_line_cells(entry)
            if cells is not None and cells <= self._width:
                # Fits on one line: no wrapping to do (a third of the cost of the general path).
                strips = [Strip(list(text.render(console, end="")), cells)]
            else:
                text.expand_tabs()
                options = console.options.update_width(self._width)
                lines = console.render_lines(text, options, pad=False)
                strips = [Strip(line) for line in lines] or [Strip.blank(0)]
            self._strips[key] = strips
        return strips

    def _layout(self, width: int) -> None:
        """Lay every entry out again for a new width (a resize)."""
        self._width = width
        self._heights.clear()
        self._rows.clear()
        if width:
            for entry in self._entries:
                self._append_rows(entry)
        self._update_size()

    def _update_size(self) -> None:
        size = Size(self._width, len(self._rows))
        if size != self.virtual_size:
            # Not through the reactive: that lays the whole screen out again (~15 ms) on every
            # batch while the log grows, and nothing but this view's scrollbar depends on it.
            self.set_reactive(LogView.virtual_size, size)
            set_scrollbar_size(self, size)
        if self._width and self.size.height:
            # Now, not after the next refresh: the frame that draws new lines shows them.
            if self._hold is not None:
                self.scroll_to(y=self._hold, animate=False, immediate=True)
            else:
                self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    # The user scrolls (wheel or keys): following the end resumes with the next lines.
    def on_mouse_scroll_down(self) -> None:
        self._hold = None

    def on_mouse_scroll_up(self) -> None:
        self._hold = None

    def action_scroll_up(self) -> None:
        self._hold = None
        super().action_scroll_up()

    def action_scroll_down(self) -> None:
        self._hold = None
        super().action_scroll_down()

    def action_page_up(self) -> None:
        self._hold = None
        super().action_page_up()

    def action_page_down(self) -> None:
        self._hold = None
        super().action_page_down()

    def action_scroll_end(self) -> None:
        self._hold = None
        super().action_scroll_end()

    def on_resize(self, event: Resize) -> None:
        width = self.scrollable_content_region.width
        if width != self._width:
            self._layout(width)
        else:
            # Taller or shorter only: keep following the end (or the held entry). Lines added
            # before the pane had its final height (a loaded machine) were scrolled for the old one.
            self._update_size()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def render_lines(self, crop: Region) -> list[Strip]:
        # The widget's style walks every ancestor's styles: once per pass, not twice per line.
        self._line_style = self.rich_style
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        if width != self._width:
            self._layout(width)
        style = self._line_style
        index = scroll_y + y
        if index >= len(self._rows):
            return Strip.blank(width, style)
        entry, line = self._rows[index]
        strips = self._render(entry)
        strip = strips[line] if line < len(strips) else Strip.blank(width)
        return strip.crop_extend(scroll_x, scroll_x + width, style).apply_style(style)


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
        yield LogView(id="log-lines")

    @property
    def lines(self) -> LogView:
        return self.query_one("#log-lines", LogView)

    @property
    def filter_input(self) -> Input:
        return self.query_one("#log-filter", Input)

    def add_entries(self, entries: Iterable[LogEntry]) -> None:
        """Append new entries (a batch per repaint)."""
        entries = list(entries)
        self._history.extend(entries)
        needle = self.filter_text
        self.lines.add(e for e in entries if e.matches(needle))

    def visible_text(self) -> list[str]:
        """The matching lines as plain text (for tests and the help screen)."""
        return [e.text for e in self._history if e.matches(self.filter_text)][-SCREEN_LINES:]

    def open_filter(self) -> None:
        self.add_class("-filtering")
        self.filter_input.focus()

    def watch_filter_text(self, needle: str) -> None:
        view = self.lines
        view.clear()
        view.add(e for e in self._history if e.matches(needle))
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
