"""Resources over many sessions: memory, CPU, disk.

1 leader + 3 headless providers (``sim``, zero model time) run ``--sessions`` sessions (100 by
default) back to back. Reported:

- RSS of every provider (``/proc/<pid>/status`` VmRSS) after the first session, every tenth, and
  the last: the goal is <= 100 MB and not growing (growth judged over the second half);
- CPU seconds per session per node (``/proc/<pid>/stat`` utime + stime, deltas over the run);
- SQLite bytes per session per node: the store's logical size (page_count x page_size, read
  through a separate read-only connection) and its files on disk (db + WAL + shm).

Alone: ``python -m bench.resources --sessions 100``.
"""

from __future__ import annotations

import argparse
import logging
import math
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.cluster import BenchError, Cluster, Node
from bench.common import machine, machine_line, progress, say, table
from bench.session import ZERO_MODEL_TIME, cpu_snapshot, run_session, warm_up

logger = logging.getLogger(__name__)

STORE_FILENAME = "sessions.sqlite3"
RSS_LIMIT_MB = 100.0
# "Not growing": at most this much RSS growth over the second half of the sessions.
GROWTH_LIMIT_MB = 2.0


def store_sizes(data_dir: Path) -> dict[str, int]:
    """Logical size (pages in use, WAL included) and bytes on disk of a node's store."""
    db = data_dir / STORE_FILENAME
    disk = sum(
        p.stat().st_size
        for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"))
        if p.exists()
    )
    logical = 0
    if db.exists():
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
            try:
                pages = con.execute("PRAGMA page_count").fetchone()[0]
                free = con.execute("PRAGMA freelist_count").fetchone()[0]
                size = con.execute("PRAGMA page_size").fetchone()[0]
                logical = (pages - free) * size
            finally:
                con.close()
        except sqlite3.Error as exc:
            logger.warning("cannot read %s: %s", db, exc)
    return {"logical": logical, "disk": disk}


def measure(
    cluster: Cluster, leader: Node, providers: Sequence[Node], sessions: int
) -> dict[str, Any]:
    n = len(providers)
    nodes = [x for x in cluster.nodes if x.alive]
    started = time.monotonic()
    # The first session is the reference point ("first"), the warm-up included.
    warm_up(leader, n, providers)
    rss: dict[str, list[tuple[int, float]]] = {p.name: [] for p in [*providers, leader]}
    if cluster.bootstrap is not None:
        rss["bootstrap"] = []
    by_name = {x.name: x for x in nodes}

    def sample_rss(i: int) -> None:
        for name, series in rss.items():
            try:
                series.append((i, by_name[name].rss_bytes() / 2**20))
            except OSError:
                pass

    sample_rss(1)
    cpu0 = cpu_snapshot(nodes)
    disk0 = {x.name: store_sizes(x.data_dir) for x in [*providers, leader]}
    failed = 0
    for i in range(2, sessions + 1):
        try:
            r = run_session(leader, n, providers)
            failed += not r.get("ok")
        except BenchError as exc:
            logger.warning("session %d lost: %s", i, exc)
            failed += 1
        if i % 10 == 0 or i == sessions:
            sample_rss(i)
    cpu1 = cpu_snapshot(nodes)
    disk1 = {x.name: store_sizes(x.data_dir) for x in [*providers, leader]}
    counted = max(1, sessions - 1)
    cpu = {name: (cpu1[name] - cpu0[name]) / counted for name in cpu0}
    provider_names = [p.name for p in providers]

    def growth(series: list[tuple[int, float]]) -> float:
        half = [mb for i, mb in series if i >= sessions // 2]
        return half[-1] - half[0] if len(half) >= 2 else math.nan

    rss_out = {
        name: {
            "first_mb": series[0][1] if series else math.nan,
            "last_mb": series[-1][1] if series else math.nan,
            "second_half_growth_mb": growth(series),
            "series": [(i, round(mb, 1)) for i, mb in series],
        }
        for name, series in rss.items()
    }
    sqlite_out = {
        name: {
            "logical_bytes_per_session": (disk1[name]["logical"] - disk0[name]["logical"])
            / counted,
            "disk_bytes_per_session": (disk1[name]["disk"] - disk0[name]["disk"]) / counted,
            "logical_bytes_total": disk1[name]["logical"],
            "disk_bytes_total": disk1[name]["disk"],
        }
        for name in disk1
    }
    prov_rss_last = [rss_out[p]["last_mb"] for p in provider_names]
    prov_growth = [rss_out[p]["second_half_growth_mb"] for p in provider_names]
    return {
        "providers": n,
        "sessions": sessions,
        "failed": failed,
        "rss": rss_out,
        "provider_rss_first_mb": max(rss_out[p]["first_mb"] for p in provider_names),
        "provider_rss_last_mb": max(prov_rss_last),
        "provider_growth_second_half_mb": max(prov_growth),
        "cpu_s_per_session": cpu,
        "cpu_s_per_session_provider_mean": sum(cpu[p] for p in provider_names) / n,
        "sqlite": sqlite_out,
        "sqlite_logical_bytes_per_session_provider_mean": sum(
            sqlite_out[p]["logical_bytes_per_session"] for p in provider_names
        )
        / n,
        "elapsed_s": time.monotonic() - started,
    }


RESOURCE_HEADERS = [
    "node",
    "RSS MB first",
    "RSS MB last",
    "growth 2nd half MB",
    "CPU s/session",
    "SQLite B/session",
    "SQLite on disk KB",
]


def resource_rows(r: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for name, mem in r["rss"].items():
        sq = r["sqlite"].get(name)
        rows.append(
            [
                name,
                mem["first_mb"],
                mem["last_mb"],
                f"{mem['second_half_growth_mb']:+.1f}",
                f"{r['cpu_s_per_session'].get(name, math.nan):.3f}",
                f"{sq['logical_bytes_per_session']:.0f}" if sq else "-",
                f"{sq['disk_bytes_total'] / 1024:.0f}" if sq else "-",
            ]
        )
    return rows


def run(sessions: int = 100, providers: int = 3) -> dict[str, Any]:
    with Cluster() as cluster:
        progress(f"resources: starting bootstrap, leader and {providers} providers")
        cluster.start_bootstrap()
        (leader,) = cluster.start_nodes(["leader"], ["--no-auto-join"], role="leader")
        nodes = cluster.add_providers(providers, ZERO_MODEL_TIME)
        progress(f"resources: {sessions} sessions")
        return measure(cluster, leader, nodes, sessions)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.resources", description=__doc__)
    parser.add_argument("--sessions", type=int, default=100, help="sessions (default 100)")
    parser.add_argument("--providers", type=int, default=3, help="providers (default 3)")
    args = parser.parse_args(argv)
    if args.sessions < 2 or args.providers < 2:
        parser.error("--sessions and --providers must be >= 2")
    say(machine_line(machine()))
    r = run(args.sessions, args.providers)
    say(table(RESOURCE_HEADERS, resource_rows(r)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
