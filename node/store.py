"""The node's session transcript: one SQLite file per node, in its data dir.

What a node saw of each session is kept so it can be audited later (``rnet audit``): every signed
envelope it sent or accepted, as the raw bytes that were on the wire (the signature covers them,
so nothing else needs to be trusted), the roles it learnt and the result. WAL journal, and one
commit per write: a node killed with SIGKILL keeps everything written before the kill.
``synchronous=NORMAL`` is enough for that (WAL loses nothing on a process crash, only possibly on
power loss) and keeps a commit well under a millisecond, which matters on the session hot path.

The schema is deliberately small and holds no derived truth: ``rnet audit`` recomputes the tally
from the raw envelopes and compares it with the stored result.
The one derived table, ``reputation`` (with ``reputation_tasks``, the sessions counted), is
the node's reputation ledger (``node.reputation``): computed from the verified envelopes here,
kept so a restart need not recount, and rebuildable from them at any time.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

STORE_FILENAME = "sessions.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    task        TEXT PRIMARY KEY,
    leader      TEXT NOT NULL,
    role        TEXT NOT NULL,
    prompt      TEXT NOT NULL DEFAULT '',
    stage       TEXT NOT NULL DEFAULT '',
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS envelopes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    task        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    sender      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    ts_ms       INTEGER NOT NULL,
    direction   TEXT NOT NULL CHECK (direction IN ('sent', 'accepted')),
    at_ms       INTEGER NOT NULL,
    raw         BLOB NOT NULL,
    UNIQUE (sender, seq)
);
CREATE INDEX IF NOT EXISTS envelopes_task ON envelopes (task, id);
CREATE TABLE IF NOT EXISTS roles (
    task        TEXT NOT NULL,
    peer        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('executor', 'verifier')),
    PRIMARY KEY (task, peer, role)
);
CREATE TABLE IF NOT EXISTS results (
    task        TEXT PRIMARY KEY,
    leader      TEXT NOT NULL,
    winner      TEXT,
    score       REAL,
    at_ms       INTEGER NOT NULL,
    result_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reputation (
    peer            TEXT PRIMARY KEY,
    first_seen_ms   INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    verifier_good   REAL NOT NULL,
    verifier_n      REAL NOT NULL,
    executor_good   REAL NOT NULL,
    executor_n      REAL NOT NULL,
    sessions        INTEGER NOT NULL,
    history_json    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reputation_tasks (
    task        TEXT PRIMARY KEY,
    at_ms       INTEGER NOT NULL
);
"""


class StoreError(Exception):
    """The store file cannot be opened or is not ours (message is one user-facing line)."""


@dataclass(frozen=True, slots=True)
class StoredEnvelope:
    """One row of ``envelopes``: the raw bytes plus what the node filed them under."""

    id: int
    task: str
    kind: str
    sender: str
    seq: int
    ts_ms: int
    direction: str
    at_ms: int
    raw: bytes


@dataclass(frozen=True, slots=True)
class StoredSession:
    """One row of ``sessions`` plus whether a result is stored."""

    task: str
    leader: str
    role: str
    prompt: str
    stage: str
    created_ms: int
    updated_ms: int
    winner: str | None
    score: float | None
    has_result: bool
    envelopes: int


@dataclass(frozen=True, slots=True)
class ReputationRow:
    """One peer's reputation evidence (``node.reputation`` keeps it; derived from transcripts
    in this store, so it can always be rebuilt from them)."""

    peer: str
    first_seen_ms: int
    updated_ms: int
    verifier_good: float
    verifier_n: float
    executor_good: float
    executor_n: float
    sessions: int
    history: list[dict[str, Any]]


class Store:
    """A node's transcript database. Not thread-safe: use it from the node's event-loop thread."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        try:
            if readonly:
                if not self.path.exists():
                    raise StoreError(f"no session store at {self.path}")
                self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # isolation_level=None: autocommit, every statement is its own transaction.
                self._db = sqlite3.connect(self.path, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(_SCHEMA)
            self._db.execute("PRAGMA busy_timeout=5000")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open session store {self.path}: {exc}") from exc

    @classmethod
    def in_data_dir(cls, data_dir: str | Path, *, readonly: bool = False) -> Store:
        """The store of the node whose data dir is ``data_dir``."""
        return cls(Path(data_dir).expanduser() / STORE_FILENAME, readonly=readonly)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes (each one committed on return) -------------------------------------------------

    def upsert_session(
        self, task: str, *, leader: str, role: str, prompt: str, stage: str, at_ms: int
    ) -> None:
        """Create the session row or update its stage and role (the leader is set once; a
        participant's role goes from ``pending`` to the one it was assigned, never back)."""
        self._db.execute(
            "INSERT INTO sessions (task, leader, role, prompt, stage, created_ms, updated_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (task) DO UPDATE SET stage = excluded.stage, "
            "updated_ms = excluded.updated_ms, "
            "role = CASE WHEN excluded.role = 'pending' THEN sessions.role ELSE excluded.role END, "
            "prompt = CASE WHEN sessions.prompt = '' THEN excluded.prompt ELSE sessions.prompt END",
            (task, leader, role, prompt, stage, at_ms, at_ms),
        )

    def record_envelope(
        self,
        *,
        task: str,
        kind: str,
        sender: str,
        seq: int,
        ts_ms: int,
        raw: bytes,
        direction: str,
        at_ms: int,
    ) -> bool:
        """Store one signed envelope; False if this ``(sender, seq)`` is already stored."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO envelopes "
            "(task, kind, sender, seq, ts_ms, direction, at_ms, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (task, kind, sender, int(seq), int(ts_ms), direction, int(at_ms), bytes(raw)),
        )
        return cur.rowcount == 1

    def record_roles(self, task: str, executors: Iterable[str], verifiers: Iterable[str]) -> None:
        rows = [(task, p, "executor") for p in executors] + [
            (task, p, "verifier") for p in verifiers
        ]
        # One transaction for the whole assignment: all roles or none.
        with self._transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO roles (task, peer, role) VALUES (?, ?, ?)", rows
            )

    def record_result(self, task: str, result: dict[str, Any], *, at_ms: int) -> None:
        """Store the session's result (the ``result`` event's dict form)."""
        self._db.execute(
            "INSERT INTO results (task, leader, winner, score, at_ms, result_json) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (task) DO UPDATE SET "
            "leader = excluded.leader, winner = excluded.winner, score = excluded.score, "
            "at_ms = excluded.at_ms, result_json = excluded.result_json",
            (
                task,
                str(result.get("leader") or ""),
                result.get("winner"),
                result.get("score"),
                at_ms,
                json.dumps(result, sort_keys=True),
            ),
        )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    # -- reads ---------------------------------------------------------------------------------

    def sessions(self) -> list[StoredSession]:
        rows = self._db.execute(
            "SELECT s.task, s.leader, s.role, s.prompt, s.stage, s.created_ms, s.updated_ms, "
            "r.winner, r.score, r.task IS NOT NULL, "
            "(SELECT COUNT(*) FROM envelopes e WHERE e.task = s.task) "
            "FROM sessions s LEFT JOIN results r ON r.task = s.task ORDER BY s.created_ms, s.task"
        ).fetchall()
        return [StoredSession(*row[:9], bool(row[9]), int(row[10])) for row in rows]

    def has_session(self, task: str) -> bool:
        return (
            self._db.execute("SELECT 1 FROM sessions WHERE task = ? LIMIT 1", (task,)).fetchone()
            is not None
        )

    def session(self, task: str) -> StoredSession | None:
        for s in self.sessions():
            if s.task == task:
                return s
        return None

    def envelopes(self, task: str) -> list[StoredEnvelope]:
        rows = self._db.execute(
            "SELECT id, task, kind, sender, seq, ts_ms, direction, at_ms, raw "
            "FROM envelopes WHERE task = ? ORDER BY id",
            (task,),
        ).fetchall()
        return [StoredEnvelope(*row[:8], bytes(row[8])) for row in rows]

    def roles(self, task: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {"executor": [], "verifier": []}
        for peer, role in self._db.execute(
            "SELECT peer, role FROM roles WHERE task = ? ORDER BY peer", (task,)
        ):
            out[role].append(peer)
        return out

    def recent_answers(self, limit: int = 8) -> list[tuple[str, str]]:
        """``(prompt, winning text)`` of the latest sessions with a result: wrong answers for
        other prompts, which a leader can mix in as canaries (their provenance does not
        matter: a canary only has to be wrong for the prompt it is judged against)."""
        rows = self._db.execute(
            "SELECT s.prompt, r.result_json FROM results r JOIN sessions s ON s.task = r.task "
            "ORDER BY r.at_ms DESC LIMIT ?",
            (int(limit),),
        ).fetchall()
        out = []
        for prompt, data in rows:
            try:
                text = json.loads(data).get("text") or ""
            except ValueError:
                continue
            if isinstance(text, str) and text.strip():
                out.append((prompt, text))
        return out

    def result(self, task: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT result_json FROM results WHERE task = ?", (task,)).fetchone()
        return json.loads(row[0]) if row else None

    # -- reputation (node.reputation) ----------------------------------------------------------

    def save_reputation(
        self, task: str, at_ms: int, rows: Iterable[ReputationRow], dropped: Iterable[str] = ()
    ) -> None:
        """Counting ``task`` changed ``rows`` (and evicted ``dropped``): one transaction."""
        with self._transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO reputation_tasks (task, at_ms) VALUES (?, ?)", (task, at_ms)
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO reputation (peer, first_seen_ms, updated_ms, "
                "verifier_good, verifier_n, executor_good, executor_n, sessions, history_json) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.peer,
                        r.first_seen_ms,
                        r.updated_ms,
                        r.verifier_good,
                        r.verifier_n,
                        r.executor_good,
                        r.executor_n,
                        r.sessions,
                        json.dumps(r.history),
                    )
                    for r in rows
                ],
            )
            self._db.executemany("DELETE FROM reputation WHERE peer = ?", [(p,) for p in dropped])

    def reputation(self) -> list[ReputationRow]:
        """Every peer's reputation evidence (none in a store from before the table existed)."""
        try:
            rows = self._db.execute(
                "SELECT peer, first_seen_ms, updated_ms, verifier_good, verifier_n, "
                "executor_good, executor_n, sessions, history_json FROM reputation ORDER BY peer"
            ).fetchall()
        except sqlite3.OperationalError:  # opened read-only before the table existed
            return []
        return [ReputationRow(*row[:8], json.loads(row[8])) for row in rows]

    def reputation_tasks(self) -> list[str]:
        """The sessions already counted, oldest first."""
        try:
            rows = self._db.execute("SELECT task FROM reputation_tasks ORDER BY at_ms, task")
            return [task for (task,) in rows.fetchall()]
        except sqlite3.OperationalError:
            return []


class _Transaction:
    """``with`` block as one explicit transaction on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
