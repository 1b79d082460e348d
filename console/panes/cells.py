"""In-place tables: a pane repaint writes only the cells whose content changed, and the next
frame draws only those cells again.

``DataTable`` keys its cell renders on one table-wide update counter, so a single changed cell
makes the next frame render every visible cell again (~60 µs each: a sessions table with a
dozen rows cost 5 ms a frame). ``CellTable`` keeps each cell's render under the cell's value
and place, so unchanged cells are reused; panes write through ``put_row``, which leaves cells
whose content is the same untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

from console.textual_compat import CellLines, CellRenderHook

#: Cell renders kept (value and lines); a few screens of cells.
KEPT_CELLS = 4096


class CellTable(CellRenderHook):
    """A ``DataTable`` that draws again only the cells that changed since they were drawn."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._drawn: LRUCache[tuple[object, ...], tuple[object, CellLines]] = LRUCache(KEPT_CELLS)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._drawn.clear()  # theme or focus styles changed: every cell looks different

    def draw_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> CellLines:
        try:
            if row_index == -1:
                value: object = self.ordered_columns[column_index].label
                height = self.header_height
            else:
                row_key, column_key = self.coordinate_to_cell_key(
                    Coordinate(row_index, column_index)
                )
                value = self.get_cell(row_key, column_key)
                height = self.rows[row_key].height
        except (CellDoesNotExist, IndexError, KeyError):
            return super().draw_cell(row_index, column_index, base_style, width, cursor, hover)
        # The value object itself is kept with its render, so its id cannot be reused while the
        # entry lives; everything else the drawing depends on is in the key.
        key = (
            row_index,
            column_index,
            id(value),
            height,
            base_style,
            width,
            cursor,
            hover,
            self.render_state,
        )
        kept = self._drawn.get(key)
        if kept is not None and kept[0] is value:
            return kept[1]
        lines = super().draw_cell(row_index, column_index, base_style, width, cursor, hover)
        self._drawn[key] = (value, lines)
        return lines


def same_cell(old: object, new: object) -> bool:
    """Equal as drawn (rich's ``Text`` equality ignores the base style)."""
    if isinstance(old, Text) and isinstance(new, Text):
        return old == new and old.style == new.style
    return old == new


def put_row(table: DataTable, key: str, cells: Mapping[str, object], *, height: int = 1) -> bool:
    """Add row ``key`` (``cells`` in column order, ``height`` lines) or update just the cells
    that changed.

    Returns whether the table changed.
    """
    if key not in table.rows:
        table.add_row(*cells.values(), key=key, height=height)
        return True
    changed = False
    for column, value in cells.items():
        if not same_cell(table.get_cell(key, column), value):
            table.update_cell(key, column, value, update_width=True)
            changed = True
    return changed


def drop_rows_except(table: DataTable, keep: set[str]) -> None:
    """Remove the rows whose key is not in ``keep``."""
    for row_key in list(table.rows):
        if row_key.value not in keep:
            table.remove_row(row_key)
