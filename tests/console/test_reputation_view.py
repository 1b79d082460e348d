"""The console shows each peer's reputation (the node's ``reputation`` events) in the Peers pane."""

from __future__ import annotations

from console.app import make_app
from console.link import ScriptedLink
from console.state import ConsoleState
from node import events as ev
from tests.console.helpers import PEERS, ready, row_text, wait_for


def test_reputation_reaches_known_and_later_peers() -> None:
    state = ConsoleState()
    state.apply({"event": "peer_joined", "peer_id": PEERS[0], "addr": "a"})
    changed = state.apply(ev.Reputation(peers={PEERS[0]: 0.42, PEERS[1]: 0.1}).to_dict())
    assert changed == {"peers", "log"}
    assert state.peers[PEERS[0]].reputation == 0.42
    state.apply({"event": "peer_joined", "peer_id": PEERS[1], "addr": "b"})
    assert state.peers[PEERS[1]].reputation == 0.1  # counted before it was seen on the mesh


async def test_peers_pane_has_a_reputation_column() -> None:
    app = make_app(ScriptedLink())
    async with app.run_test(size=(160, 40)) as pilot:
        app.feed(ready(), {"event": "peer_joined", "peer_id": PEERS[0], "addr": "127.0.0.1:5001"})
        table = app.peers_pane
        await wait_for(pilot, lambda: table.row_count == 1, what="a peer row")
        assert row_text(table, PEERS[0])[-1] == "-"  # nothing counted yet
        app.feed({"event": "reputation", "peers": {PEERS[0]: 0.734}})
        await wait_for(pilot, lambda: row_text(table, PEERS[0])[-1] == "0.73", what="rep shown")
