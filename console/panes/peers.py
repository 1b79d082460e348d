"""Peers pane: who this node sees — short id, address, ping RTT, model/backend, state."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive

from console.panes.cells import CellTable, drop_rows_except, put_row
from console.state import Peer, short_id


class PeersPane(CellTable):
    """One row per known peer; lost peers stay listed, dimmed, so a drop is visible."""

    peers: reactive[tuple[Peer, ...]] = reactive((), init=False, always_update=True)
    """Snapshot of the peers, assigned by the App."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        self.border_title = "Peers"

    def on_mount(self) -> None:
        # Narrow terminals cut from the right: the columns that matter most come first.
        self.add_column("peer", key="peer")
        self.add_column("state", key="state")
        self.add_column("rtt", key="rtt")
        self.add_column("name · model", key="model")
        self.add_column("address", key="addr")
        self.show_cursor = False

    def watch_peers(self, peers: tuple[Peer, ...]) -> None:
        # In place: only the cells that changed are redrawn (a burst of pings changes RTTs).
        for peer in peers:
            lost = peer.state != "connected"
            style = "dim" if lost else ""
            rtt = f"{peer.rtt_ms:.0f}ms" if peer.rtt_ms is not None else "-"
            model = peer.model or ""
            if peer.backend and model and peer.backend not in model:
                model = f"{model} ({peer.backend})"
            model = " · ".join(part for part in (peer.name, model) if part) or "-"
            state = Text("lost", style="bold red") if lost else Text("up", style="green")
            put_row(
                self,
                peer.peer_id,
                {
                    "peer": Text(short_id(peer.peer_id), style=style or "bold"),
                    "state": state,
                    "rtt": Text(rtt, style=style),
                    "model": Text(model, style=style),
                    "addr": Text(peer.addr or "-", style="dim"),
                },
            )
        if len(self.rows) != len(peers):
            drop_rows_except(self, {peer.peer_id for peer in peers})
        connected = sum(1 for p in peers if p.state == "connected")
        self.border_title = f"Peers {connected}/{len(peers)}" if peers else "Peers"
