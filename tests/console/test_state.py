"""ConsoleState folds events into snapshots; malformed events are shown, never raised."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

from console.settings import Settings
from console.state import ConsoleState, SessionView
from node import events as ev
from tests.console.helpers import EXECUTORS, PEERS, VERIFIERS, result, session

ROOT = Path(__file__).resolve().parents[2]


def test_session_then_result_merges_and_reports_progress() -> None:
    state = ConsoleState()
    assert state.apply(session()) == {"sessions", "log"}
    view = state.sessions["task-1"]
    assert view.stage_index == 2
    assert view.counts() == {
        "joined": 4,
        "responses": 1,
        "responses_expected": 2,
        "scores": 1,
        "scores_expected": 2,
    }
    assert not view.is_missing(EXECUTORS[0], VERIFIERS[1]), "pending while the session runs"
    state.apply(result())
    view = state.sessions["task-1"]
    assert view.stage_index == 4 and view.winner == EXECUTORS[0]
    assert view.winning_text == "Paris is the capital of France."
    assert view.prompt == "What is the capital of France?"  # kept from the snapshot
    assert view.is_missing(EXECUTORS[1], VERIFIERS[1])


def view_of(stage: str, missing: ev.Missing, **over: object) -> SessionView:
    snapshot = ev.Session(task="t", leader=PEERS[0], role="leader", stage=stage, missing=missing)
    return SessionView("t", replace(snapshot, **over))


def test_missing_cells_are_pending_until_the_session_is_over() -> None:
    e, v = EXECUTORS[0], VERIFIERS[0]
    missing = ev.Missing(executors=[EXECUTORS[1]], verifiers=[], scores={e: [v]})
    live = view_of("verify", missing)
    assert not live.is_missing(e, v)  # still pending
    assert live.is_missing(EXECUTORS[1]) and live.is_missing(EXECUTORS[1], v)
    done = view_of("done", missing)
    assert done.is_missing(e, v) and not done.is_missing(e, VERIFIERS[1])
    silent = view_of("verify", ev.Missing(verifiers=[v]))
    assert silent.is_missing(e, v) and not silent.is_missing(e)


def test_aborted_session_and_wall_clock_deadline() -> None:
    assert view_of("aborted", ev.Missing()).stage_index == -1
    assert view_of("aborted", ev.Missing()).deadline_left_s() is None
    view = view_of("execute", ev.Missing(), stage_deadline_ms=105_000)
    assert view.deadline_left_s(now_ms=102_000) == 3.0


def test_a_result_with_a_reason_is_an_aborted_session() -> None:
    state = ConsoleState()
    state.apply(session(stage="execute"))
    state.apply(result(winner=None, score=None, text="", reason="no executor responded"))
    view = state.sessions["task-1"]
    assert view.stage_index == -1 and view.reason == "no executor responded"


@dataclass(frozen=True, slots=True)
class Novel(ev.Event):
    event: ClassVar[str] = "novel"
    x: int = 1


def test_malformed_and_unknown_events_become_log_lines() -> None:
    state = ConsoleState()
    assert state.apply({"event": "mesh", "topics": ["not", "a", "map"]}) == {"log"}
    assert state.apply({"event": "session"}) == {"log"}  # no task
    assert state.apply({"event": "brand_new", "x": 1}) == {"log"}
    assert state.apply(42) == {"log"}
    assert state.apply(Novel()) == {"log"}  # a typed event this console has no pane for
    levels = [e.level for e in state.take_new_log()]
    assert levels == ["error", "error", "info", "error", "info"]


def test_peer_info_logs_only_state_changes() -> None:
    state = ConsoleState()
    info = {
        "event": "peer_info",
        "peer_id": PEERS[0],
        "model": "m",
        "backend": "sim",
        "rtt_ms": 1.0,
        "state": "connected",
    }
    state.apply({"event": "peer_joined", "peer_id": PEERS[0], "addr": "/ip4/1.2.3.4/tcp/1"})
    state.take_new_log()
    state.apply(info)
    state.apply({**info, "rtt_ms": 2.0})
    assert state.take_new_log() == []
    state.apply({**info, "rtt_ms": 2.0, "state": "lost"})
    assert [e.level for e in state.take_new_log()] == ["warning"]
    assert state.peers[PEERS[0]].rtt_ms == 2.0


def test_real_event_objects_are_accepted() -> None:
    from node.events import PeerJoined, Session

    state = ConsoleState()
    state.apply(PeerJoined(peer_id=PEERS[0], addr="/ip4/127.0.0.1/tcp/1"))
    state.apply(Session(task="t1", leader=PEERS[1], role="leader", stage="execute"))
    assert PEERS[0] in state.peers and state.sessions["t1"].stage_index == 1


def test_a_batch_folds_to_the_same_state_and_log_as_one_by_one() -> None:
    from node import events as ev

    def snapshot(task: str, stage: str, score: float) -> ev.Session:
        return ev.Session(
            task=task,
            leader=PEERS[0],
            role="leader",
            stage=stage,
            prompt="p",
            executors=EXECUTORS,
            verifiers=VERIFIERS,
            scores={EXECUTORS[0]: {VERIFIERS[0]: score}},
        )

    batch: list[object] = [
        snapshot("a", "execute", 0.1),
        session("b", stage="advertise"),
        snapshot("a", "execute", 0.2),
        snapshot("a", "verify", 0.3),  # a stage change inside the batch is still logged
        session("b", stage="execute"),
        result("b"),  # the snapshot before a result is folded in full
        session("b", stage="finalize"),
        {"event": "session"},  # malformed: reported the same way
        snapshot("a", "verify", 0.4),
        session("b", stage="finalize"),
    ]
    one, whole = ConsoleState(), ConsoleState()
    one.apply(snapshot("a", "advertise", 0.0), now=1.0)
    whole.apply(snapshot("a", "advertise", 0.0), now=1.0)
    dirty: set[str] = set()
    for event in batch:
        dirty |= one.apply(event, now=2.0)
    assert whole.apply_all(batch, now=2.0) == dirty
    assert whole.events_seen == one.events_seen
    assert list(whole.log) == list(one.log)
    assert whole.sessions == one.sessions
    assert whole.sessions["a"].first_seen == 1.0 and whole.sessions["b"].result is not None


def test_settings_round_trip_and_bad_values(tmp_path: Path) -> None:
    path = tmp_path / "console.toml"
    Settings(theme="rnet-light", keymap={"pipe": "ctrl+p", "quit": 'q"'}).save(path)
    loaded = Settings.load(path)
    assert loaded.theme == "rnet-light" and loaded.keymap == {"pipe": "ctrl+p", "quit": 'q"'}
    path.write_text("keymap = 3\n")
    assert "not a table" in (Settings.load(path).problem or "")


def test_console_state_imports_no_textual() -> None:
    code = "import sys, console.state, console.settings; print('textual' in sys.modules)"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_an_aborted_session_row_says_aborted_and_the_scores_pane_says_why() -> None:
    from console.panes.scores import ScoresPane
    from console.panes.sessions import stage_line

    state = ConsoleState()
    state.apply(session(stage="execute"))
    state.apply(result(winner=None, score=None, text="", reason="no executor responded"))
    view = state.sessions["task-1"]
    assert stage_line(view).plain == "aborted"
    assert ScoresPane._winner_text(ScoresPane(), view).plain == "aborted: no executor responded"


def test_the_gateway_queue_is_kept_for_the_title() -> None:
    state = ConsoleState()
    dirty = state.apply({"event": "gateway_queue", "running": 5, "waiting": 12, "capacity": 5})
    assert "peers" in dirty and state.gateway_queue == (5, 12, 5)
    state.apply({"event": "peer_info", "peer_id": "12D3KooWx", "slots": 4, "slots_used": 3})
    assert (state.peers["12D3KooWx"].slots, state.peers["12D3KooWx"].slots_used) == (4, 3)


def test_rejections_count_per_peer_and_summary_lines_count_their_repeats() -> None:
    state = ConsoleState()
    peer = PEERS[0]
    state.apply({"event": "peer_joined", "peer_id": peer, "addr": "1.2.3.4:5"})
    state.apply({"event": "rejected", "reason": "not_msgpack", "sender": peer, "topic": "t"})
    changed = state.apply(
        {
            "event": "rejected",
            "reason": "not_msgpack",
            "sender": peer,
            "topic": "t",
            "repeats": 49,
            "reasons": {"not_msgpack": 49},
        }
    )
    assert "peers" in changed
    assert state.rejected == 50
    (row,) = [p for p in state.peers_snapshot() if p.peer_id == peer]
    assert row.rejected == 50
    # a sender that is no peer of ours (a forged origin) is counted, but gets no row
    state.apply({"event": "rejected", "reason": "bad_signature", "sender": "nobody", "topic": "t"})
    assert state.rejected == 51 and "nobody" not in state.peers
