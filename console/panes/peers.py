"""Peers pane: who this node sees — short id, state, ping RTT and model slots in use/offered,
reputation, name, address, model/backend (or why it takes no session role)."""

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
        # Two lines per peer, so the whole model and address fit a 40-column pane: the peer over
        # its state and RTT | name · address over model (backend), or why it takes no role.
        self.add_column("peer", key="peer")
        self.add_column("name · address / model", key="node")
        # reputation in this node's ledger (README: Trust), "-" until a session counted; last,
        # so a narrow pane cuts it before the address
        self.add_column("rep", key="rep")
        self.show_cursor = False

    def watch_peers(self, peers: tuple[Peer, ...]) -> None:
        # In place: only the cells that changed are redrawn (a burst of pings changes RTTs).
        for peer in peers:
            lost = peer.state != "connected"
            style = "dim" if lost else ""
            rtt = f" {peer.rtt_ms:.0f}ms" if peer.rtt_ms is not None else ""
            # slots in use / offered: a full provider joins no more sessions until one frees
            full = peer.slots and peer.slots_used >= peer.slots
            slots = (
                (f" {peer.slots_used}/{peer.slots}", style or ("yellow" if full else "cyan"))
                if peer.slots
                else ""
            )
            state = Text("lost", style="bold red") if lost else Text("up", style="green")
            rep = f"{peer.reputation:.2f}" if peer.reputation is not None else "-"
            if peer.rejected:
                # what this node dropped from the peer (invalid, over its rate, refused)
                state.append(f" ✗{peer.rejected}", style="bold yellow")
            put_row(
                self,
                peer.peer_id,
                {
                    "peer": Text.assemble(
                        (short_id(peer.peer_id), style or "bold"), "\n", state, (rtt, style), slots
                    ),
                    "node": node_cell(peer, style),
                    "rep": Text(rep, style=style),
                },
                height=2,
            )
        if len(self.rows) != len(peers):
            drop_rows_except(self, {peer.peer_id for peer in peers})
        connected = sum(1 for p in peers if p.state == "connected")
        self.border_title = f"Peers {connected}/{len(peers)}" if peers else "Peers"


def node_cell(peer: Peer, style: str) -> Text:
    """``provider-1 · 127.0.0.1:5001`` over ``qwen2.5:1.5b (ollama)``, whole (never cut); a
    node whose model does not answer shows why instead of the model."""
    first = " · ".join(part for part in (peer.name, peer.addr) if part) or "-"
    model = peer.model or ""
    if peer.backend and model and peer.backend not in model:
        model = f"{model} ({peer.backend})"
    second = Text(peer.status, style="yellow") if peer.status else Text(model or "-", style=style)
    return Text.assemble(Text(first, style=style), "\n", second)
