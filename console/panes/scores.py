"""Scores pane: the selected session's executors x verifiers matrix, averages and winner."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import DataTable, Static

from console.messages import ShowText
from console.panes.cells import CellTable, put_row, same_cell
from console.state import SessionView, short_id


def score_cell(view: SessionView, executor: str, verifier: str) -> Text:
    score = view.scores.get(executor, {}).get(verifier)
    if isinstance(score, int | float):
        return Text(f"{score:.2f}")
    if view.is_missing(executor, verifier) or view.is_missing(executor):
        return Text("✗", style="bold red")
    return Text("·", style="dim")


class ScoresPane(Vertical):
    """Matrix filling live; ``✗`` marks a missing score, ``·`` one still pending; the winner's
    row is highlighted and its text shown below (Enter on a row opens that executor's answer)."""

    session: reactive[SessionView | None] = reactive(None, init=False, always_update=True)
    """Snapshot of the session to show (None: no session yet)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.border_title = "Scores"
        self._shape: tuple[str, tuple[str, ...], tuple[str, ...]] | None = None
        self._winner_shown: Text | None = None

    def compose(self) -> ComposeResult:
        yield CellTable(id="score-matrix", cursor_type="row", show_cursor=False)
        yield Static(
            Text("no session yet — press p to pipe a prompt", style="dim italic"), id="winner"
        )

    @property
    def matrix(self) -> DataTable:
        return self.query_one("#score-matrix", DataTable)

    @property
    def winner_line(self) -> Static:
        return self.query_one("#winner", Static)

    def watch_session(self, view: SessionView | None) -> None:
        table = self.matrix
        if view is None:
            table.clear(columns=True)
            self._shape = None
            self.border_title = "Scores"
            return
        self.border_title = f"Scores · {view.task}"
        verifiers, executors = view.verifiers, view.executors
        shape = (view.task, tuple(verifiers), tuple(executors))
        if shape != self._shape:
            # Another session or other roles: rebuild. Otherwise only changed cells are written.
            self._shape = shape
            table.clear(columns=True)
            table.add_column("executor", key="executor")
            for verifier in verifiers:
                table.add_column(short_id(verifier), key=verifier)
            table.add_column("avg", key="avg")
        averages, winner = view.averages, view.winner
        for executor in executors:
            is_winner = executor == winner
            name = Text(
                ("★ " if is_winner else "  ") + short_id(executor),
                style="bold green" if is_winner else "",
            )
            if view.is_missing(executor) and not view.responses.get(executor):
                name.append(" no answer", style="red")
            avg = averages.get(executor)
            avg_text = Text(
                f"{avg:.2f}" if isinstance(avg, int | float) else "-",
                style="bold green" if is_winner else "bold",
            )
            cells = [score_cell(view, executor, v) for v in verifiers]
            if is_winner:
                for cell in cells:
                    cell.stylize("green")
            row: dict[str, Text] = {"executor": name}
            row.update(zip(verifiers, cells, strict=True))
            row["avg"] = avg_text
            put_row(table, executor, row)
        winner_text = self._winner_text(view)
        if not same_cell(self._winner_shown, winner_text):
            # Static.update lays the whole screen out again: only when the line really changed.
            self._winner_shown = winner_text
            self.winner_line.update(winner_text)

    def _winner_text(self, view: SessionView) -> Text:
        if view.stage_index < 0:
            return Text(f"aborted: {view.reason or view.stage}", style="bold red")
        winner = view.winner
        if not winner:
            prompt = view.prompt
            return Text(f"prompt: {prompt}" if prompt else "waiting for scores…", style="dim")
        score = view.score
        if score is None:
            score = view.averages.get(winner)
        text = Text()
        text.append("winner ", style="bold")
        text.append(short_id(winner), style="bold green")
        if score is not None:
            text.append(f" {score:.2f}", style="bold")
        text.append(": ")
        text.append((view.winning_text or "").strip().replace("\n", " "))
        return text

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        view = self.session
        if view is None or event.row_key.value is None:
            return
        executor = str(event.row_key.value)
        text = view.winning_text if executor == view.winner else view.responses.get(executor)
        self.post_message(
            ShowText(
                f"{view.task} · answer of {short_id(executor)}", text or "(no answer received)"
            )
        )
