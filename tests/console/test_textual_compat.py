"""Each private Textual API that console/textual_compat.py wraps still exists and still does
what the console relies on. A Textual upgrade that moves one fails here, by name."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.suggester import SuggestFromList
from textual.widgets import DataTable, Input

from console.textual_compat import (
    CellRenderHook,
    input_suggestion,
    set_scrollbar_size,
    wrap_compositor_refresh,
)
from tests.console.helpers import wait_for


class Table(CellRenderHook):
    def __init__(self) -> None:
        super().__init__()
        self.drawn: list[tuple[int, int]] = []

    def draw_cell(self, row_index: int, column_index: int, *args: object, **kw: object) -> object:
        self.drawn.append((row_index, column_index))
        return super().draw_cell(row_index, column_index, *args, **kw)  # type: ignore[arg-type]


class Probe(App[None]):
    def compose(self) -> ComposeResult:
        yield Input(suggester=SuggestFromList(["hello"]), id="input")
        yield Table()
        yield ScrollView(id="scroll")


async def test_input_suggestion_is_what_the_suggester_offered() -> None:
    app = Probe()
    async with app.run_test() as pilot:
        field = app.query_one("#input", Input)
        field.focus()
        assert input_suggestion(field) == ""
        await pilot.press("h", "e")
        await wait_for(pilot, lambda: input_suggestion(field) == "hello", what="a suggestion")


async def test_set_scrollbar_size_updates_the_scrollbar_alone() -> None:
    app = Probe()
    async with app.run_test(size=(40, 20)) as pilot:
        view = app.query_one("#scroll", ScrollView)
        size = Size(10, 500)
        view.set_reactive(ScrollView.virtual_size, size)
        set_scrollbar_size(view, size)
        await pilot.pause()
        assert view.show_vertical_scrollbar
        assert view.vertical_scrollbar.window_virtual_size == 500


async def test_every_cell_render_goes_through_draw_cell() -> None:
    app = Probe()
    async with app.run_test() as pilot:
        table = app.query_one(Table)
        table.add_columns("a", "b")
        table.add_row("1", "2")
        await wait_for(pilot, lambda: (0, 1) in table.drawn, what="a body cell drawn")
        assert (-1, 0) in table.drawn, "the header goes through the hook too"
        before = table.render_state
        table.focus()
        await wait_for(pilot, lambda: table.render_state != before, what="focus in the state")
        assert "_render_cell" in DataTable.__dict__, "the hook overrides DataTable's own method"


async def test_wrapped_compositor_refresh_sees_every_frame() -> None:
    app = Probe()
    frames: list[int] = []

    def wrap(original: object) -> None:
        frames.append(1)
        original()  # type: ignore[operator]

    async with app.run_test() as pilot:
        wrap_compositor_refresh(app.screen, wrap)
        app.query_one("#input", Input).value = "changed"
        await wait_for(pilot, lambda: bool(frames), what="a frame drawn through the wrapper")
