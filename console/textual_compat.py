"""The one place the console touches Textual's private API (checked against Textual 8.2).

Each use below has no public equivalent and a reason; each is pinned by
``tests/console/test_textual_compat.py``, which fails if a Textual upgrade moves or changes it.
Nothing else in ``console/`` (or ``bench/``) may reach for a ``_name`` of Textual: add it here,
with its reason and its test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.segment import Segment
from rich.style import Style
from textual.widgets import DataTable

if TYPE_CHECKING:
    from textual.geometry import Size
    from textual.screen import Screen
    from textual.widget import Widget
    from textual.widgets import Input

#: A rendered cell: its lines of segments (Textual's private ``SegmentLines``).
CellLines = list[list[Segment]]


def input_suggestion(widget: Input) -> str:
    """The completion an ``Input``'s suggester offered for its current value ("" if none);
    Tab accepts it. Private: ``Input._suggestion`` (no public getter)."""
    return widget._suggestion


def set_scrollbar_size(widget: Widget, size: Size) -> None:
    """Update the scrollbars for a new virtual size without the reactive's full relayout
    (``set_reactive`` sets the value silently; this is what its watcher would do for the
    scrollbars alone). Private: ``ScrollView._scroll_update``."""
    widget._scroll_update(size)


def wrap_compositor_refresh(
    screen: Screen[Any], wrap: Callable[[Callable[[], None]], None]
) -> None:
    """Call ``wrap(original)`` in place of each frame the screen's compositor draws (for the
    UI benchmark's frame timings). Private: ``Screen._compositor_refresh``."""
    original = screen._compositor_refresh

    def compositor_refresh() -> None:
        wrap(original)

    screen._compositor_refresh = compositor_refresh  # type: ignore[method-assign]


class CellRenderHook(DataTable[Any]):
    """A ``DataTable`` whose per-cell render goes through :meth:`draw_cell`.

    Textual renders each cell in ``DataTable._render_cell`` (private) and keys its own cache on
    a table-wide counter; :class:`console.panes.cells.CellTable` overrides :meth:`draw_cell` to
    keep each cell's lines. ``render_state`` is what else a cell's drawing depends on.
    """

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> CellLines:
        return self.draw_cell(row_index, column_index, base_style, width, cursor, hover)

    def draw_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> CellLines:
        """Textual's own render of one cell (its lines)."""
        return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)

    @property
    def render_state(self) -> tuple[object, ...]:
        """The table-wide state a cell's look depends on besides its arguments: cursor shown,
        hover cursor shown, pseudo-classes (focus...). Private: ``_show_hover_cursor``,
        ``_pseudo_class_state``."""
        return (self.show_cursor, self._show_hover_cursor, self._pseudo_class_state)
