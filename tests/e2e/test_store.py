"""The session store: committed per write (a SIGKILLed writer loses nothing), read back exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from node.store import Store, StoreError

REPO = Path(__file__).resolve().parents[2]


def _env_kwargs(i: int) -> dict:
    return dict(
        task="t1",
        kind="score",
        sender=f"peer{i % 3}",
        seq=i,
        ts_ms=1000 + i,
        raw=bytes([i % 256]) * 10,
        direction="accepted",
        at_ms=2000 + i,
    )


def test_roundtrip_and_listing(tmp_path: Path) -> None:
    with Store.in_data_dir(tmp_path) as store:
        store.upsert_session(
            "t1", leader="L", role="leader", prompt="p?", stage="advertise", at_ms=5
        )
        assert store.record_envelope(**_env_kwargs(1))
        assert not store.record_envelope(**_env_kwargs(1)), "same (sender, seq) stored twice"
        store.record_roles("t1", ["E1", "E2"], ["V1"])
        store.upsert_session("t1", leader="L", role="leader", prompt="", stage="done", at_ms=9)
        store.record_result("t1", {"leader": "L", "winner": "E1", "score": 0.5}, at_ms=10)
    with Store.in_data_dir(tmp_path, readonly=True) as store:
        (s,) = store.sessions()
        assert (s.task, s.stage, s.prompt, s.winner, s.score, s.envelopes) == (
            "t1",
            "done",
            "p?",
            "E1",
            0.5,
            1,
        )
        (env,) = store.envelopes("t1")
        assert env.raw == bytes([1]) * 10 and env.sender == "peer1" and env.seq == 1
        assert store.roles("t1") == {"executor": ["E1", "E2"], "verifier": ["V1"]}
        assert store.result("t1")["winner"] == "E1"
        assert store.envelopes("other") == []


def test_readonly_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no session store"):
        Store.in_data_dir(tmp_path / "nothing", readonly=True)


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "sessions.sqlite3").write_bytes(b"garbage" * 1000)
    with pytest.raises(StoreError, match="cannot open"):
        Store.in_data_dir(tmp_path)


def test_sigkill_keeps_every_committed_write(tmp_path: Path) -> None:
    """A writer killed with SIGKILL right after reporting N writes: all N are in the file."""
    script = textwrap.dedent(
        f"""
        import sys
        from node.store import Store
        store = Store.in_data_dir({str(tmp_path)!r})
        for i in range(1, 100000):
            store.record_envelope(task="t", kind="response", sender="p", seq=i, ts_ms=i,
                                  raw=b"x" * 64, direction="sent", at_ms=i)
            print(i, flush=True)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True
    )
    assert proc.stdout is not None
    last = 0
    for line in proc.stdout:
        last = int(line)
        if last >= 300:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    with Store.in_data_dir(tmp_path, readonly=True) as store:
        assert len(store.envelopes("t")) >= last


def test_recent_answers_for_canaries(tmp_path: Path) -> None:
    with Store.in_data_dir(tmp_path) as store:
        for i, (prompt, text) in enumerate([("p1", "one"), ("p2", ""), ("p3", "three")]):
            store.upsert_session(
                f"t{i}", leader="L", role="leader", prompt=prompt, stage="done", at_ms=i
            )
            store.record_result(f"t{i}", {"leader": "L", "text": text}, at_ms=10 + i)
        assert store.recent_answers() == [("p3", "three"), ("p1", "one")]  # newest first, no empty
