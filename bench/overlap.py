"""Overlap: model time hides the protocol, and nothing waits on a fixed sleep.

``sim`` with 1.0 s per generation and 0.5 s per judgement, 6 providers (3 executors + 3
verifiers with the balanced split). The ideal session is one generation (executors answer in
parallel) plus the time one verifier needs to judge every response when it judges them
concurrently (measured here on the sim backend itself: 3 judgements at once, ~0.5 s). The
ratio is the session's wall time over that ideal.

Alone: ``python -m bench.overlap --sessions 8``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from bench.cluster import BenchError, Cluster
from bench.common import machine, machine_line, median, progress, say, summary, table
from bench.session import run_session, warm_up

logger = logging.getLogger(__name__)

GEN_MS = 1000
JUDGE_MS = 500
EXECUTORS = 3
VERIFIERS = 3


async def _concurrent_judging_s(judge_ms: float, responses: int) -> float:
    """Wall time for one sim verifier to judge ``responses`` answers at once."""
    from node.slm.sim import SimBackend

    backend = SimBackend(name="bench", judge_ms=judge_ms)
    try:
        started = time.perf_counter()
        await asyncio.gather(
            *(backend.judge("What is 2+2?", f"answer {i}") for i in range(responses))
        )
        return time.perf_counter() - started
    finally:
        await backend.aclose()


def concurrent_judging_s(judge_ms: float = JUDGE_MS, responses: int = EXECUTORS) -> float:
    return asyncio.run(_concurrent_judging_s(judge_ms, responses))


def run(
    sessions: int = 8,
    *,
    gen_ms: int = GEN_MS,
    judge_ms: int = JUDGE_MS,
    cluster: Cluster | None = None,
    providers: int = EXECUTORS + VERIFIERS,
) -> dict[str, Any]:
    """``providers`` (default 6) split n//2 executors / the rest verifiers by the leader.
    With ``cluster``, its leader and providers are reused (more are started if needed)."""
    n = providers
    judge_s = concurrent_judging_s(judge_ms, n // 2)
    ideal_s = gen_ms / 1000 + judge_s
    own = cluster is None
    cluster = cluster or Cluster()
    try:
        if cluster.bootstrap is None:
            progress("overlap: starting bootstrap and leader")
            cluster.start_bootstrap()
        leader = next((x for x in cluster.nodes if x.role == "leader" and x.alive), None)
        if leader is None:
            (leader,) = cluster.start_nodes(["leader"], ["--no-auto-join"], role="leader")
        timed = ["--sim-gen-ms", str(gen_ms), "--sim-judge-ms", str(judge_ms)]
        have = cluster.providers
        if len(have) < n:
            progress(f"overlap: starting {n - len(have)} providers ({gen_ms}/{judge_ms} ms)")
            cluster.add_providers(n - len(have), timed)
        nodes = cluster.providers[:n]
        warm_up(leader, n, nodes)
        progress(f"overlap: {sessions} sessions")
        results = []
        for _ in range(sessions):
            try:
                results.append(run_session(leader, n, nodes))
            except BenchError as exc:
                results.append({"ok": False, "error": str(exc)})
    finally:
        if own:
            cluster.close()
    good = [r for r in results if r.get("ok")]
    wall = [r["wall_ms"] for r in good]
    stages = {
        k: median(r["timings"].get(k, float("nan")) for r in good)
        for k in ("join", "execute", "verify", "total")
    }
    med = median(wall)
    return {
        "providers": n,
        "gen_ms": gen_ms,
        "judge_ms": judge_ms,
        "judging_concurrently_s": judge_s,
        "ideal_s": ideal_s,
        "wall_ms": summary(wall),
        "stages_ms_median": stages,
        "ratio": med / 1000 / ideal_s,
        "ratio_p95": summary(wall)["p95"] / 1000 / ideal_s,
        "overhead_ms": med - ideal_s * 1000,
        "sessions": len(results),
        "failed": len(results) - len(good),
        "samples_wall_ms": [round(x, 1) for x in wall],
    }


OVERLAP_HEADERS = [
    "gen/judge ms",
    "ideal s",
    "session s (med)",
    "p95",
    "join/exec/verify ms",
    "ratio",
    "ok/total",
]


def overlap_rows(r: dict[str, Any]) -> list[list[Any]]:
    st = r["stages_ms_median"]
    return [
        [
            f"{r['gen_ms']}/{r['judge_ms']}",
            f"{r['ideal_s']:.3f}",
            f"{r['wall_ms']['median'] / 1000:.3f}",
            f"{r['wall_ms']['p95'] / 1000:.3f}",
            f"{st['join']:.0f}/{st['execute']:.0f}/{st['verify']:.0f}",
            f"{r['ratio']:.2f}",
            f"{r['sessions'] - r['failed']}/{r['sessions']}",
        ]
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.overlap", description=__doc__)
    parser.add_argument("--sessions", type=int, default=8, help="sessions (default 8)")
    parser.add_argument("--gen-ms", type=int, default=GEN_MS)
    parser.add_argument("--judge-ms", type=int, default=JUDGE_MS)
    args = parser.parse_args(argv)
    say(machine_line(machine()))
    r = run(args.sessions, gen_ms=args.gen_ms, judge_ms=args.judge_ms)
    say(table(OVERLAP_HEADERS, overlap_rows(r)))
    return 0 if r["sessions"] > r["failed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
