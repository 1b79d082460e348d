"""In-place table updates: a pane repaint touches only the cells whose content changed.

A ``DataTable`` re-renders every visible cell after any change (its caches are keyed by an
update counter), and rebuilding a table also resets its cursor and column widths, so panes
compare before they write.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.widgets import DataTable


def same_cell(old: object, new: object) -> bool:
    """Equal as drawn (rich's ``Text`` equality ignores the base style)."""
    if isinstance(old, Text) and isinstance(new, Text):
        return old == new and old.style == new.style
    return old == new


def put_row(table: DataTable, key: str, cells: Mapping[str, object]) -> bool:
    """Add row ``key`` (``cells`` in column order) or update just the cells that changed.

    Returns whether the table changed.
    """
    if key not in table.rows:
        table.add_row(*cells.values(), key=key)
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
