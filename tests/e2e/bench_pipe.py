"""Wall time of ``pipe 3`` sessions with ``sim`` at zero latency (prints numbers; asserts nothing).

    python -m tests.e2e.bench_pipe [--sessions 10] [--providers 4]

Starts bootstrap + N sim providers (processes on loopback) and one more headless provider as the
leader, then runs ``pipe 3`` on the leader's stdin ``--sessions`` times, one after another. For each
session it reports the leader's own ``timings`` (advertise -> result published) and the round trip
seen from outside (command written -> result event read). Also times a few one-shot
``rnet pipe 3`` processes (start-up and shutdown included).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.conftest import run_pipe
from tests.node.swarm import Swarm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--providers", type=int, default=4)
    parser.add_argument("--processes", type=int, default=3, help="one-shot rnet pipe runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Swarm(Path(tmp)) as swarm:
        swarm.start_bootstrap(timeout=60)
        providers = swarm.start_providers(args.providers, timeout=60)
        leader = swarm.start_provider("leader", ["--no-auto-join"], timeout=60)
        everyone = [*providers, leader]
        swarm.wait_until(
            lambda: all(len(p.peer_ids()) >= args.providers + 1 for p in everyone), 60, "mesh"
        )
        totals, round_trips, stages = [], [], []
        for i in range(args.sessions):
            since = leader.mark()
            sent = time.monotonic()
            leader.send("pipe 3 What is 2+2?")
            result = leader.wait_for(
                lambda e: e.get("event") == "result" and e.get("leader") == leader.peer_id,
                60,
                since,
                what="result",
            )
            round_trips.append((time.monotonic() - sent) * 1000)
            totals.append(result["timings"]["total"])
            stages.append(result["timings"])
            leader.wait_event("command_output", 10, since=since, command="pipe")
            print(f"session {i + 1}: {result['timings']}", flush=True)
        print(
            f"pipe 3 session (leader, advertise -> result): median {statistics.median(totals):.0f} ms"
            f" (min {min(totals):.0f}, max {max(totals):.0f}) over {len(totals)}"
        )
        for stage in ("join", "execute", "verify"):
            values = [s[stage] for s in stages if stage in s]
            print(f"  {stage:8s} median {statistics.median(values):.0f} ms")
        print(
            f"command -> result event (stdin/stdout included): median {statistics.median(round_trips):.0f} ms"
        )
        walls = []
        for i in range(args.processes):
            run = run_pipe(swarm, Path(tmp) / f"pipe{i}", 3, "What is 2+2?")
            if run.returncode == 0:
                walls.append(run.wall_s * 1000)
        if walls:
            print(
                f"rnet pipe 3 process (start-up + session + shutdown): median {statistics.median(walls):.0f} ms"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
