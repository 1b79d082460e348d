"""Sessions pane: one row per session, its stage as a live progress line, counts, deadline."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import DataTable

from console.messages import SessionSelected
from console.panes.cells import CellTable, put_row
from console.state import STAGES, SessionView, short_id

STAGE_LABELS = ("Adv", "Exe", "Ver", "Fin")
SEPARATOR = "\u203a"  # single right-pointing angle quotation mark: narrow and unambiguous


def stage_line(view: SessionView) -> Text:
    """``Adv>Exe>Ver>Fin`` (drawn with a chevron) with finished stages green, the running one highlighted."""
    index = view.stage_index
    if index < 0:
        return Text("aborted", style="bold red")  # the scores pane says why
    text = Text()
    for i, label in enumerate(STAGE_LABELS):
        if i:
            text.append(SEPARATOR, style="dim")
        if i < index:
            text.append(label, style="green")
        elif i == index:
            text.append(label, style="bold reverse")
        else:
            text.append(label, style="dim")
    if index >= len(STAGES):
        text.append("✔", style="bold green")
    return text


def display_task(task: str) -> str:
    """Generated ids (``task-1a2b3c4d``) without the common prefix: the column is narrow."""
    shown = task.removeprefix("task-") or task
    return shown if len(shown) <= 14 else shown[:13] + "…"


def counts_text(view: SessionView) -> Text:
    c = view.counts()
    text = Text(f"j{c['joined']} ")
    text.append(f"r{c['responses']}/{c['responses_expected']} ")
    text.append(f"s{c['scores']}/{c['scores_expected']}")
    return text


def deadline_text(view: SessionView) -> Text:
    left = view.deadline_left_s()
    if left is None:
        return Text("-", style="dim")
    return Text(f"{left:4.1f}s", style="bold red" if left < 3 else "")


class SessionsPane(CellTable):
    """Rows keyed by task id; moving the cursor posts ``SessionSelected`` up."""

    sessions: reactive[tuple[SessionView, ...]] = reactive((), init=False, always_update=True)
    """Snapshot of every session seen, oldest first."""
    selected: reactive[str | None] = reactive(None, init=False)
    """Task id the scores pane shows (kept under the cursor)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", **kwargs)  # type: ignore[arg-type]
        self.border_title = "Sessions"
        self._clock: Timer | None = None
        # Set by user-driven cursor moves only: following the newest session moves the cursor
        # programmatically and must not pin the selection.
        self._user_moved = False

    def on_mount(self) -> None:
        self.add_column("task", key="task")
        self.add_column("stage", key="stage")
        self.add_column("counts", key="counts")
        self.add_column("left", key="deadline")
        self.add_column("role", key="role")
        self.add_column("leader", key="leader")
        # A clock for the countdown only; paused whenever no session has a running deadline.
        self._clock = self.set_interval(0.5, self._tick, pause=True)

    def watch_sessions(self, sessions: tuple[SessionView, ...]) -> None:
        # Update rows in place (sessions never disappear) so the cursor stays where it is;
        # only changed cells are written (a snapshot often changes just a count).
        for view in sessions:
            put_row(
                self,
                view.task,
                {
                    "task": Text(display_task(view.task), style="bold"),
                    "stage": stage_line(view),
                    "counts": counts_text(view),
                    "deadline": deadline_text(view),
                    "role": Text(view.role or "-", style="dim"),
                    "leader": Text(short_id(view.leader), style="dim"),
                },
            )
        self._move_cursor_to(self.selected)
        self.border_title = f"Sessions {len(sessions)}" if sessions else "Sessions"
        live = any(v.deadline_left_s() is not None for v in sessions)
        if self._clock is not None:
            self._clock.resume() if live else self._clock.pause()

    def watch_selected(self, task: str | None) -> None:
        self._move_cursor_to(task)

    def _move_cursor_to(self, task: str | None) -> None:
        if task is None or task not in self.rows:
            return
        index = self.get_row_index(task)
        if self.cursor_row != index:
            self.move_cursor(row=index, animate=False)

    def _tick(self) -> None:
        for view in self.sessions:
            if view.task in self.rows:
                put_row(self, view.task, {"deadline": deadline_text(view)})

    def action_cursor_up(self) -> None:
        self._user_moved = True
        super().action_cursor_up()

    def action_cursor_down(self) -> None:
        self._user_moved = True
        super().action_cursor_down()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if not self._user_moved or event.row_key.value is None:
            return
        self._user_moved = False
        self.post_message(SessionSelected(str(event.row_key.value)))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter or a click: an explicit choice."""
        event.stop()
        if event.row_key.value is not None:
            self.post_message(SessionSelected(str(event.row_key.value)))
