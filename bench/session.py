"""Protocol overhead per session: ``sim`` at zero model time, 1 leader + N providers.

For each N the providers run as separate processes (the swarm grows 3 -> 6 -> 12 -> 24 without
restarting the bootstrap and the leader); the leader runs ``pipe N <prompt>`` on its stdin and a
sample is the time from writing that line to reading the leader's ``result`` event (the leader's
own ``adv``->result timing is kept too). Floor broadcasts (``bench.floor``) are interleaved with
the sessions, so both see the same machine load; each round of floor samples first waits until
the nodes are idle (``Cluster.wait_quiet``): after a result line every node still stores the
transcript and re-verifies the session for its reputation book, and a floor sampled in that
tail measured the tail (at N=24, ~200 ms instead of ~40, which made the N=24 ratio look met).

The first round's protocol needed 5 sequential broadcast rounds before the leader had its
result: advertise, join, assign, response, scores (verifiers batch their scores into one
message). Blind judging (protocol v2) adds a sixth: responses go to the leader only, which
forwards them to the verifiers as labelled items; the reveal and the result follow. The ratio
keeps the first round's denominator, session wall time / (5 x floor), so it stays comparable
across rounds: a v2 session that cost exactly its broadcast rounds would show 1.2.
Three rounds have many senders at once: N joins, N/2 responses and N/2 score batches, all to
the leader only (the session's leader topic). The message-weighted floor (2 one-to-all
broadcasts + rounds of those shapes, ``FloorProbe.sample_to_one`` / ``sample_many``, with its
own ratio) predates blind judging and keeps its first-round shape for the same reason.

Alone: ``python -m bench.session --providers 3 --sessions 20`` (``--providers 3,6,12,24``);
``--profile`` runs the bootstrap, the leader and one provider under cProfile and says where their
CPU time goes.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.cluster import BenchError, Cluster, Node
from bench.common import machine, machine_line, median, progress, say, summary, table
from bench.floor import FloorProbe

logger = logging.getLogger(__name__)

ROUNDS_TO_LEADER_RESULT = 5
ROUNDS_TO_ALL_RESULTS = 6
PROMPT = "What is the capital of France?"
SESSION_TIMEOUT_S = 40.0
ZERO_MODEL_TIME = ("--sim-gen-ms", "0", "--sim-judge-ms", "0")
DEFAULT_SIZES = (3, 6, 12, 24)
MIN_SESSIONS = 10  # a size is measured only if at least this many sessions fit the budget
# The whole `make bench` should stay within ~5 minutes on 2 cores: the session part gets this.
DEFAULT_BUDGET_S = 170.0


def cpu_snapshot(nodes: Sequence[Node]) -> dict[str, float]:
    out = {}
    for node in nodes:
        try:
            out[node.name] = node.cpu_seconds()
        except OSError:
            out[node.name] = math.nan
    return out


def run_session(leader: Node, n: int, participants: Sequence[Node]) -> dict[str, Any]:
    """One ``pipe n``: wall times (bench side), the leader's stage timings, what was missing."""
    since = leader.mark()
    marks = {p.name: p.mark() for p in participants}
    t0 = leader.send(f"pipe {n} {PROMPT}")

    def done(e: dict) -> bool:
        kind = e.get("event")
        return kind == "result" or (
            kind == "command_output" and e.get("command") == "pipe" and not e.get("ok")
        )

    e = leader.wait_for(done, SESSION_TIMEOUT_S, since, what=f"result of pipe {n}")
    out: dict[str, Any] = {"ok": False}
    if e.get("event") != "result":
        out["error"] = e.get("text", "")
        return out
    task = e.get("task")
    out.update(
        ok=e.get("winner") is not None,
        task=task,
        wall_ms=(e["_t"] - t0) * 1000,
        timings=e.get("timings") or {},
        missing=sum(len(v) for k, v in (e.get("missing") or {}).items() if k != "scores")
        + sum(len(v) for v in ((e.get("missing") or {}).get("scores") or {}).values()),
    )
    # The pipe command's own output closes the leader's side; every participant's result event
    # closes theirs (so the next session does not start on top of this one's tail).
    leader.wait_for(
        lambda x: x.get("event") == "command_output" and x.get("command") == "pipe",
        SESSION_TIMEOUT_S,
        since,
        what="pipe output",
    )
    last = e["_t"]
    for p in participants:
        try:
            r = p.wait_for(
                lambda x: x.get("event") == "result" and x.get("task") == task,
                10.0,
                marks[p.name],
                what=f"result of {task}",
            )
            last = max(last, r["_t"])
        except BenchError:
            out["late_participants"] = out.get("late_participants", 0) + 1
    out["all_ms"] = (last - t0) * 1000
    return out


def warm_up(leader: Node, n: int, participants: Sequence[Node], tries: int = 4) -> None:
    """Sessions until one succeeds: every new provider is routed and known to the leader."""
    for attempt in range(tries):
        try:
            r = run_session(leader, n, participants)
        except BenchError as exc:
            logger.info("warm-up %d for N=%d: %s", attempt + 1, n, exc)
            continue
        if r["ok"]:
            return
        logger.info("warm-up %d for N=%d failed: %s", attempt + 1, n, r.get("error"))
    raise BenchError(f"no session with {n} providers succeeded in {tries} warm-up tries")


def round_shapes(n: int) -> tuple[list[int], list[int]]:
    """Senders per round of a session with ``n`` providers (balanced split): many-to-all
    (responses: n // 2 executors) and many-to-leader (joins: n; score batches: the other
    n - n // 2, the verifiers)."""
    return [n // 2], sorted({n, n - n // 2})


def sample_round_shapes(probe: FloorProbe, n: int) -> None:
    to_all, to_one = round_shapes(n)
    for k in to_all:
        probe.sample_many(k)
    for k in to_one:
        probe.sample_to_one(k)


def measure_size(
    cluster: Cluster,
    leader: Node,
    providers: Sequence[Node],
    sessions: int,
    floor_per_session: int = 1,
    *,
    deadline: float | None = None,
    min_sessions: int = MIN_SESSIONS,
    spy: tuple[str, Path] | None = None,
) -> dict[str, Any]:
    """Floor samples and sessions, interleaved, for ``len(providers)`` providers.

    Past ``deadline`` (monotonic) it stops early, but not before ``min_sessions`` sessions.
    ``spy`` = (py-spy executable, output dir): the floor is sampled first, then py-spy records
    the leader, one provider and the bootstrap during the sessions only.
    """
    n = len(providers)
    started = time.monotonic()
    warm_up(leader, n, providers)
    probe = FloorProbe(leader, providers, f"bench-floor-{n}")
    probe.open()
    nodes = [x for x in cluster.nodes if x.alive]
    cpu_total = {x.name: 0.0 for x in nodes}
    watched = [x for x in (leader, providers[0], cluster.bootstrap) if x is not None]
    counts0 = {x.name: dict(x.counts) for x in watched}
    bytes0 = {x.name: x.bytes_out for x in watched}
    results = []
    spies: list[Any] = []
    try:
        if spy is not None:
            cluster.wait_quiet()
            for _ in range(sessions):
                for _ in range(floor_per_session):
                    probe.sample()
                sample_round_shapes(probe, n)
            from bench.profile import start_spies

            spies = start_spies(spy[0], spy[1], n, watched)
        for i in range(sessions):
            if deadline is not None and i >= min_sessions and time.monotonic() > deadline:
                logger.warning("N=%d: stopping after %d sessions (time budget)", n, i)
                break
            if spy is None:
                cluster.wait_quiet()  # the last session's tail is not the network's floor
                for _ in range(floor_per_session):
                    probe.sample()
                sample_round_shapes(probe, n)
            before = cpu_snapshot(nodes)
            try:
                results.append(run_session(leader, n, providers))
            except BenchError as exc:
                logger.warning("session lost: %s", exc)
                results.append({"ok": False, "error": str(exc)})
            after = cpu_snapshot(nodes)
            for name in cpu_total:
                cpu_total[name] += after[name] - before[name]
        # What each node printed per session (floor rounds' message events included).
        done = max(1, len(results))
        events_per_session = {
            x.name: {
                k: round((v - counts0[x.name].get(k, 0)) / done, 1)
                for k, v in sorted(x.counts.items())
                if v - counts0[x.name].get(k, 0) > 0
            }
            for x in watched
        }
        stdout_bytes_per_session = {x.name: (x.bytes_out - bytes0[x.name]) / done for x in watched}
    finally:
        if spies:
            from bench.profile import stop_spies

            stop_spies(spies)
        probe.close()
    good = [r for r in results if r.get("ok")]
    wall = [r["wall_ms"] for r in good]
    floor = probe.result()
    floor_med = floor["all_ms"]["median"]  # type: ignore[index]
    many = {k: v["median"] for k, v in floor["many_ms"].items()}  # type: ignore[union-attr]
    to_one = {k: v["median"] for k, v in floor["to_one_ms"].items()}  # type: ignore[union-attr]
    # The session's rounds with their real shapes: advertise and assign are one-to-all, joins
    # and score batches many-to-leader, responses many-to-all.
    weighted = 2 * floor_med + to_one.get(n, math.nan) + many.get(n // 2, math.nan)
    weighted += to_one.get(n - n // 2, math.nan)
    count = max(1, len(results))
    per_node = {name: cpu / count for name, cpu in cpu_total.items()}
    provider_cpu = [per_node[p.name] for p in providers]
    stage = {
        k: median(r["timings"].get(k, math.nan) for r in good)
        for k in ("join", "execute", "verify", "total")
    }
    med = median(wall)
    out = {
        "providers": n,
        "sessions": len(results),
        "failed": len(results) - len(good),
        "with_missing": sum(1 for r in good if r.get("missing")),
        "wall_ms": summary(wall),
        "leader_total_ms": summary([r["timings"].get("total", math.nan) for r in good]),
        "all_results_ms": summary([r["all_ms"] for r in good if "all_ms" in r]),
        "stages_ms_median": stage,
        "floor": floor,
        "rounds": ROUNDS_TO_LEADER_RESULT,
        "ratio": med / (ROUNDS_TO_LEADER_RESULT * floor_med),
        "ratio_p95": summary(wall)["p95"] / (ROUNDS_TO_LEADER_RESULT * floor["all_ms"]["p95"]),  # type: ignore[index]
        "message_weighted_floor_ms": weighted,
        "ratio_weighted": med / weighted,
        "cpu_s_per_session": {
            "all_nodes": sum(per_node.values()),
            "leader": per_node.get(leader.name, math.nan),
            "bootstrap": per_node.get("bootstrap", math.nan),
            "provider_mean": sum(provider_cpu) / len(provider_cpu) if provider_cpu else math.nan,
            "provider_max": max(provider_cpu) if provider_cpu else math.nan,
        },
        "samples_wall_ms": [round(x, 1) for x in wall],
        "events_per_session": events_per_session,
        "stdout_bytes_per_session": stdout_bytes_per_session,
        "elapsed_s": time.monotonic() - started,
    }
    # Busy share of the machine while sessions ran: CPU-seconds per wall-second per core. The
    # CPU is read around the whole session (until every participant printed its result), so
    # divide by that time, not by the leader's.
    span = median(r["all_ms"] for r in good if "all_ms" in r)
    if span and not math.isnan(span):
        out["cpu_utilisation"] = (
            out["cpu_s_per_session"]["all_nodes"] / (span / 1000) / (os.cpu_count() or 1)
        )
    return out


SESSION_HEADERS = [
    "N",
    "floor 1->all ms (med/p95)",
    "session ms (med)",
    "p95",
    "join/exec/verify ms",
    "ratio (5 x floor)",
    "weighted floor ms",
    "ratio (weighted)",
    "CPU s/session",
    "ok",
]


def session_rows(results: Sequence[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for r in results:
        if r.get("skipped"):
            rows.append([str(r["providers"]), *["-"] * 8, "skipped"])
            continue
        f = r["floor"]["all_ms"]
        st = r["stages_ms_median"]
        rows.append(
            [
                str(r["providers"]),
                f"{f['median']:.1f}/{f['p95']:.1f}",
                r["wall_ms"]["median"],
                r["wall_ms"]["p95"],
                f"{st['join']:.0f}/{st['execute']:.0f}/{st['verify']:.0f}",
                f"{r['ratio']:.2f}",
                r["message_weighted_floor_ms"],
                f"{r['ratio_weighted']:.2f}",
                f"{r['cpu_s_per_session']['all_nodes']:.2f}",
                f"{r['sessions'] - r['failed']}/{r['sessions']}",
            ]
        )
    return rows


def session_notes(results: Sequence[dict[str, Any]]) -> list[str]:
    """One line per skipped size (why), for under the table."""
    return [f"N={r['providers']}: {r['skipped']}" for r in results if r.get("skipped")]


def run(
    sizes: Sequence[int] = DEFAULT_SIZES,
    sessions: int = 20,
    *,
    budget_s: float = DEFAULT_BUDGET_S,
    floor_per_session: int = 1,
    profile_dir: Path | None = None,
    cluster: Cluster | None = None,
    on_cluster: Any = None,
    spy: tuple[str, Path] | None = None,
) -> list[dict[str, Any]]:
    """Every size in ``sizes`` (ascending), growing one swarm; sizes that would not fit in the
    remaining ``budget_s`` are skipped (and say so). ``on_cluster(cluster, leader, providers)``
    runs once the first size's swarm is up (``bench`` runs the resource part there)."""
    started = time.monotonic()
    own = cluster is None
    cluster = cluster or Cluster(kinds={"message"})
    results: list[dict[str, Any]] = []
    try:
        prefix_for = _profiler(profile_dir)
        progress("session: starting bootstrap and leader")
        cluster.start_bootstrap(python_prefix=prefix_for("bootstrap"))
        (leader,) = cluster.start_nodes(
            ["leader"], ["--no-auto-join"], role="leader", python_prefix=prefix_for("leader")
        )
        last: tuple[int, float, int] | None = None
        for n in sorted(sizes):
            if last is not None:
                prev_n, prev_s, prev_count = last
                # Measured here: a session's cost grows ~N^2 to N^3 (N^2 deliveries through the
                # hub, more processes on the same cores); the size must fit its minimum number
                # of sessions (measure_size stops at the deadline after that many).
                per_iteration = prev_s / max(1, prev_count)
                estimate = per_iteration * (n / prev_n) ** 2.5 * MIN_SESSIONS + (n - prev_n)
                left = budget_s - (time.monotonic() - started)
                if estimate > left:
                    note = (
                        f"skipped: {MIN_SESSIONS} sessions would take ~{estimate:.0f} s, "
                        f"{max(left, 0):.0f} s of the time budget left"
                    )
                    progress(f"session N={n} {note}")
                    results.append({"providers": n, "skipped": note})
                    continue
            t_start = time.monotonic()
            missing = n - len(cluster.providers)
            if missing > 0:
                progress(f"session: starting {missing} more providers (N={n})")
                cluster.add_providers(missing, ZERO_MODEL_TIME, python_prefix=prefix_for)
            providers = cluster.providers[:n]
            if on_cluster is not None and not results:
                hook_started = time.monotonic()
                on_cluster(cluster, leader, providers)
                started += time.monotonic() - hook_started  # the hook's time is not ours
                t_start = time.monotonic()
            progress(f"session: N={n}, {sessions} sessions")
            try:
                r = measure_size(
                    cluster,
                    leader,
                    providers,
                    sessions,
                    floor_per_session,
                    deadline=started + budget_s,
                    spy=spy,
                )
            except BenchError as exc:
                progress(f"session N={n} failed: {exc}")
                results.append({"providers": n, "skipped": f"failed: {exc}"[:200]})
                break
            results.append(r)
            last = (n, time.monotonic() - t_start, r["sessions"] + 1)
            say(table(SESSION_HEADERS, session_rows([r])))
    finally:
        if own:
            cluster.close()
    return results


def _profiler(profile_dir: Path | None) -> Any:
    """argv prefix per node name: cProfile for the bootstrap, the leader and p1."""
    if profile_dir is None:
        return lambda name: ()
    profile_dir.mkdir(parents=True, exist_ok=True)

    def prefix(name: str) -> tuple[str, ...]:
        if name in ("bootstrap", "leader", "p1"):
            return ("-m", "cProfile", "-o", str(profile_dir / f"{name}.prof"))
        return ()

    return prefix


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.session", description=__doc__)
    parser.add_argument(
        "--providers",
        default="3,6,12,24",
        help="comma-separated swarm sizes N (default 3,6,12,24; sizes that do not fit the "
        "budget are skipped)",
    )
    parser.add_argument("--sessions", type=int, default=20, help="sessions per N (default 20)")
    parser.add_argument(
        "--floor-per-session", type=int, default=1, help="1->all broadcasts per session (1)"
    )
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, help="seconds (170)")
    parser.add_argument(
        "--profile",
        type=Path,
        nargs="?",
        const=Path("bench/results/profile"),
        default=None,
        metavar="DIR",
        help="run bootstrap, leader and p1 under cProfile (into DIR, default "
        "bench/results/profile) and print where their CPU time goes",
    )
    parser.add_argument(
        "--spy",
        type=Path,
        nargs="?",
        const=Path("bench/results/spy"),
        default=None,
        metavar="DIR",
        help="sample the leader, p1 and the bootstrap with py-spy during the sessions (py-spy "
        "on PATH or in $PY_SPY; `pip install --target /tmp/pyspy py-spy` and "
        "PY_SPY=/tmp/pyspy/bin/py-spy) and print where their time goes",
    )
    args = parser.parse_args(argv)
    spy = None
    if args.spy is not None:
        import shutil

        exe = os.environ.get("PY_SPY") or shutil.which("py-spy")
        if not exe:
            parser.error("--spy needs py-spy: on PATH, or its path in $PY_SPY")
        spy = (exe, args.spy)
    try:
        sizes = [int(x) for x in args.providers.split(",") if x.strip()]
    except ValueError:
        parser.error("--providers takes comma-separated whole numbers, e.g. 3,6,12")
    if any(n < 2 for n in sizes) or args.sessions < 1:
        parser.error("every N must be >= 2 and --sessions >= 1")
    say(machine_line(machine()))
    results = run(
        sizes,
        args.sessions,
        budget_s=args.budget,
        floor_per_session=args.floor_per_session,
        profile_dir=args.profile,
        spy=spy,
    )
    say()
    say(table(SESSION_HEADERS, session_rows(results)))
    for line in session_notes(results):
        say(line)
    if args.profile is not None:
        from bench.profile import report

        say()
        say(report(args.profile))
    if spy is not None:
        from bench.profile import spy_report

        say()
        say(spy_report(spy[1]))
    return 0 if any(not r.get("skipped") for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
