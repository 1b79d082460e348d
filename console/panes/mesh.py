"""Topic mesh pane: topic -> peers, the local view or the bootstrap's (``bootmesh``) view."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from console.panes.cells import same_cell
from console.state import short_id


class MeshPane(Static):
    """Shows one of two topic maps; the App toggles ``show_bootmesh``."""

    local: reactive[dict[str, list[str]]] = reactive(dict, init=False, always_update=True)
    """This node's own view: topic -> peers subscribed (as the node's pubsub sees them)."""
    bootmesh: reactive[dict[str, list[str]]] = reactive(dict, init=False, always_update=True)
    """The bootstrap's published view of the whole swarm."""
    show_bootmesh: reactive[bool] = reactive(False, init=False)
    """Which view is shown."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.border_title = "Mesh · local"
        self._shown: Text | None = None

    def on_mount(self) -> None:
        self._render_topics()

    def watch_local(self) -> None:
        self._render_topics()

    def watch_bootmesh(self) -> None:
        self._render_topics()

    def watch_show_bootmesh(self, show: bool) -> None:
        self.border_title = "Mesh · bootstrap" if show else "Mesh · local"
        self._render_topics()

    def _render_topics(self) -> None:
        topics = self.bootmesh if self.show_bootmesh else self.local
        text = Text()
        if not topics:
            text.append("no topics yet", style="dim italic")
        for i, (topic, peers) in enumerate(sorted(topics.items())):
            if i:
                text.append("\n")
            text.append(topic, style="bold")
            text.append(f" ({len(peers)}) ", style="dim")
            text.append(" ".join(short_id(p) for p in peers))
        if not same_cell(self._shown, text):
            # Static.update lays the screen out again; the mesh is re-sent unchanged often.
            self._shown = text
            self.update(text)
