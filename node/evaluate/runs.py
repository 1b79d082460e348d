"""The store of evaluation runs: one SQLite file (``eval.sqlite`` in the evaluating node's data
dir). A run is its settings and its questions, written when it starts, then one row per question
written the moment the question is done -- so an interrupted run loses nothing finished, and
``--resume RUN`` asks only what is missing.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.evaluate.questions import Question

FILE_NAME = "eval.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    settings TEXT NOT NULL,
    questions TEXT NOT NULL,
    finished_ms INTEGER
);
CREATE TABLE IF NOT EXISTS records (
    run TEXT NOT NULL REFERENCES runs(id),
    idx INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (run, idx)
);
"""


class RunsError(ValueError):
    """An unknown run, or a store that cannot be used; the message says which."""


@dataclass(frozen=True, slots=True)
class Run:
    id: str
    created_ms: int
    settings: dict[str, Any]
    questions: list[Question]
    records: list[dict[str, Any]]
    finished_ms: int | None

    @property
    def done(self) -> set[int]:
        return {r["idx"] for r in self.records}


class RunStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path)
            # WAL without a sync per commit: a record survives the process being killed the
            # moment after it is written (not a power cut), at a fraction of the cost.
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise RunsError(f"{self.path}: cannot open the runs store ({exc})") from None

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> RunStore:
        return cls(Path(data_dir) / FILE_NAME)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self.db:
            yield self.db

    def new_id(self, now: float | None = None) -> str:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
        run_id, n = f"run-{stamp}", 1
        while self.db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone():
            n += 1
            run_id = f"run-{stamp}-{n}"
        return run_id

    def create(self, run_id: str, settings: dict[str, Any], questions: list[Question]) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs (id, created_ms, settings, questions) VALUES (?, ?, ?, ?)",
                (
                    run_id,
                    time.time_ns() // 1_000_000,
                    json.dumps(settings),
                    json.dumps([q.to_dict() for q in questions]),
                ),
            )

    def add(self, run_id: str, record: dict[str, Any]) -> None:
        """One finished question (replaces an earlier record of the same question)."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO records (run, idx, record) VALUES (?, ?, ?)",
                (run_id, int(record["idx"]), json.dumps(record)),
            )

    def finish(self, run_id: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET finished_ms = ? WHERE id = ?",
                (time.time_ns() // 1_000_000, run_id),
            )

    def load(self, run_id: str) -> Run:
        row = self.db.execute(
            "SELECT id, created_ms, settings, questions, finished_ms FROM runs WHERE id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            known = ", ".join(r.id for r in self.list()[-5:]) or "none yet"
            raise RunsError(f"no run {run_id!r} in {self.path} (latest: {known})")
        records = [
            json.loads(text)
            for (text,) in self.db.execute(
                "SELECT record FROM records WHERE run = ? ORDER BY idx", (run_id,)
            )
        ]
        return Run(
            id=row[0],
            created_ms=row[1],
            settings=json.loads(row[2]),
            questions=[Question.from_dict(d) for d in json.loads(row[3])],
            records=records,
            finished_ms=row[4],
        )

    def list(self) -> list[Run]:
        """Every run, oldest first, without records."""
        rows = self.db.execute(
            "SELECT id, created_ms, settings, finished_ms FROM runs ORDER BY created_ms, id"
        ).fetchall()
        return [Run(r[0], r[1], json.loads(r[2]), [], [], r[3]) for r in rows]
