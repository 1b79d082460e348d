"""Capacity: K requests at once through the gateway against P providers' model slots.

A real swarm of processes (bootstrap, P ``sim`` providers with S slots each, ``rnet serve``
with N providers per session); the model takes ``gen_ms`` per answer and ``judge_ms`` per
judgement. For each K, K requests are sent at once (raw HTTP, ``/api/generate``, not
streamed) and each one's latency (queue wait included) and outcome are recorded.

The ideal (what the providers' slots allow): a session needs N different providers, each for
one slot, so at most C = floor(P * S / N) sessions run at once (and P >= N); a session lasts at
least T = gen_ms + judge_ms (an answer, then its judgements, which run concurrently). K
requests then take at least ceil(K / C) * T: ideal throughput = K / (ceil(K / C) * T).
Ratio = measured throughput (K / wall time from the first request sent to the last answer) /
ideal throughput. Overheads (joining, the mesh, HTTP, the CPU of P + 2 processes on a shared
machine) pull it down. It can exceed 1: this ideal holds N slots for the whole session, while
a provider holds a slot only for its model call (an answer, or a judgement; a verifier waiting
for the answer holds none), so the gateway runs P * S / peak_slots(N) sessions at once (8 here,
not 5). The model-time bound, printed too, is what the slots allow when every slot is busy all
the time: P * S / (E * gen_ms + V * E * judge_ms) sessions per second (E executors, V verifiers).

Fairness (bench/fairness.py), on the same swarm after the K loads: a second gateway (a second
leader) starts and both are sent ``--fairness`` requests (40) at the same moment; per leader its
answers, p50/p95 and its share of the sessions completed while both were busy (fair = 0.5).

Alone: ``python -m bench.capacity`` (``--quick`` for a tiny run).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
from collections.abc import Sequence
from typing import Any

from bench import fairness
from bench.cluster import START_TIMEOUT_S, BenchError, Cluster
from bench.common import machine, machine_line, percentile, progress, say, table

PROVIDERS = 4
SLOTS = 4
PER_SESSION = 3
GEN_MS = 500
JUDGE_MS = 200
LOADS = (1, 5, 20, 100)
REQUEST_TIMEOUT_S = 300.0


def ideal(k: int, providers: int, slots: int, per_session: int, session_s: float) -> dict:
    """Sessions at once, the ideal wall time for ``k`` requests, and its throughput (see above)."""
    at_once = (providers * slots) // per_session if providers >= per_session else 0
    if at_once < 1:
        return {"at_once": 0, "wall_s": math.inf, "per_s": 0.0}
    wall = math.ceil(k / at_once) * session_s
    return {"at_once": at_once, "wall_s": wall, "per_s": k / wall}


async def _fire(url: str, k: int) -> tuple[list[dict[str, Any]], float]:
    """``k`` requests at once; each one's status and latency; the wall time (first sent to
    last answered)."""
    (outcomes,) = await fairness.contend([url], [k], REQUEST_TIMEOUT_S)
    return outcomes, max((o["end"] for o in outcomes), default=0.0)


def _slots_known(gateway: Any, providers: Sequence[Any], slots: int) -> bool:
    ids = {p.peer_id for p in providers}
    seen = {
        e["peer_id"]
        for e in gateway.events
        if e.get("event") == "peer_info" and e.get("slots") == slots
    }
    return ids <= seen


def _start_gateway(
    cluster: Cluster, name: str, providers: Sequence[Any], slots: int, per_session: int
) -> tuple[Any, str]:
    """An ``rnet serve`` leader, once it has seen every provider's slots; it and its URL."""
    gateway = cluster.spawn(
        "serve",
        name,
        [
            *("--listen", "127.0.0.1:0", "--providers", str(per_session)),
            *("--timeout", str(REQUEST_TIMEOUT_S), "--join-deadline", "20"),
            *("--exec-deadline", "60", "--verify-deadline", "60"),
        ],
        role="gateway",
    )
    url = gateway.wait_event("gateway", START_TIMEOUT_S)["url"]
    cluster.wait(
        lambda: _slots_known(gateway, providers, slots), START_TIMEOUT_S, "the providers' slots"
    )
    return gateway, url


def run(
    loads: Sequence[int] = LOADS,
    *,
    providers: int = PROVIDERS,
    slots: int = SLOTS,
    per_session: int = PER_SESSION,
    gen_ms: int = GEN_MS,
    judge_ms: int = JUDGE_MS,
    fairness_k: int = fairness.AT_ONCE,
) -> dict[str, Any]:
    """The K loads through one gateway; then, unless ``fairness_k`` is 0, a second gateway
    joins and both are sent ``fairness_k`` requests at once (bench/fairness.py)."""
    session_s = (gen_ms + judge_ms) / 1000
    rows: list[dict[str, Any]] = []
    with Cluster(kinds={"gateway", "peer_info", "rejected"}) as cluster:
        progress(f"capacity: bootstrap, {providers} providers x {slots} slots, a gateway")
        cluster.start_bootstrap()
        model = [
            "--slots",
            str(slots),
            "--sim-gen-ms",
            str(gen_ms),
            "--sim-judge-ms",
            str(judge_ms),
        ]
        nodes = cluster.add_providers(providers, model)
        gateway, url = _start_gateway(cluster, "gateway", nodes, slots, per_session)
        warm, _ = asyncio.run(_fire(url, 1))
        if not warm[0]["ok"]:
            raise BenchError(f"capacity: the warm-up request failed: {warm[0]['error']}")
        for k in loads:
            progress(f"capacity: {k} requests at once")
            mark = len(gateway.events)
            cpu = sum(n.cpu_seconds() for n in cluster.nodes)
            outcomes, wall = asyncio.run(_fire(url, k))
            cpu = sum(n.cpu_seconds() for n in cluster.nodes) - cpu
            late = sum(
                1
                for e in gateway.events[mark:]
                if e.get("event") == "rejected" and e.get("reason") == "late"
            )
            good = [o["s"] for o in outcomes if o["ok"]]
            best = ideal(k, providers, slots, per_session, session_s)
            errors = sorted({o["error"] for o in outcomes if not o["ok"]})
            rows.append(
                {
                    "k": k,
                    "ok": len(good),
                    "success": len(good) / k,
                    "p50_s": percentile(good, 50),
                    "p95_s": percentile(good, 95),
                    "wall_s": wall,
                    "per_s": len(good) / wall if wall > 0 else math.nan,
                    "ideal": best,
                    "ratio": (len(good) / wall) / best["per_s"] if best["per_s"] else math.nan,
                    "errors": errors[:5],
                    # joins that came after the session had its providers (a slot idle a while)
                    "late_joins": late,
                    "cpu_s_per_request": cpu / k,
                    "cpu_share": cpu / wall / (os.cpu_count() or 1),
                }
            )
        fair = None
        if fairness_k > 0:
            progress(f"capacity: a second gateway; {fairness_k} requests to each at once")
            _, url2 = _start_gateway(cluster, "gateway2", nodes, slots, per_session)
            warm, _ = asyncio.run(_fire(url2, 1))
            if not warm[0]["ok"]:
                raise BenchError(
                    f"capacity: the second gateway's warm-up failed: {warm[0]['error']}"
                )
            fair = fairness.measure([url, url2], fairness_k)
    return {
        "providers": providers,
        "slots": slots,
        "per_session": per_session,
        "gen_ms": gen_ms,
        "judge_ms": judge_ms,
        "session_s": session_s,
        "rows": rows,
        "fairness": fair,
    }


CAPACITY_HEADERS = [
    "K",
    "success",
    "p50 s",
    "p95 s",
    "wall s",
    "sessions/s",
    "ideal sessions/s",
    "ratio",
    "late joins",
    "CPU s/request",
]


def capacity_rows(r: dict[str, Any]) -> list[list[Any]]:
    return [
        [
            str(row["k"]),
            f"{row['success'] * 100:.0f}% ({row['ok']}/{row['k']})",
            f"{row['p50_s']:.2f}",
            f"{row['p95_s']:.2f}",
            f"{row['wall_s']:.2f}",
            f"{row['per_s']:.2f}",
            f"{row['ideal']['per_s']:.2f}",
            f"{row['ratio']:.2f}",
            str(row["late_joins"]),
            f"{row['cpu_s_per_request']:.2f}",
        ]
        for row in r["rows"]
    ]


def model_bound(r: dict[str, Any]) -> float:
    """Sessions per second when every slot is busy all the time (balanced split: N // 2
    executors answer, the rest judge each answer)."""
    n = r["per_session"]
    executors = n // 2
    slot_s = (executors * r["gen_ms"] + (n - executors) * executors * r["judge_ms"]) / 1000
    return r["providers"] * r["slots"] / slot_s


def describe(r: dict[str, Any]) -> str:
    at_once = r["rows"][0]["ideal"]["at_once"] if r["rows"] else 0
    return (
        f"{r['providers']} sim providers x {r['slots']} slots, {r['per_session']} providers per "
        f"session, {r['gen_ms']} ms per answer and {r['judge_ms']} ms per judgement; ideal = "
        f"floor({r['providers']} x {r['slots']} / {r['per_session']}) = {at_once} sessions at "
        f"once, each {r['session_s']:.1f} s (answer + judgement): K / (ceil(K / {at_once}) x "
        f"{r['session_s']:.1f} s). A slot is held only for a model call, so the ratio may pass "
        f"1; the model-time bound (every slot busy all the time) is "
        f"{model_bound(r):.1f} sessions/s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__)
    parser.add_argument("--providers", type=int, default=PROVIDERS)
    parser.add_argument("--slots", type=int, default=SLOTS)
    parser.add_argument("--per-session", type=int, default=PER_SESSION)
    parser.add_argument("--gen-ms", type=int, default=GEN_MS)
    parser.add_argument("--judge-ms", type=int, default=JUDGE_MS)
    parser.add_argument(
        "--loads", default=",".join(map(str, LOADS)), help="K values, comma-separated"
    )
    parser.add_argument(
        "--fairness",
        type=int,
        default=fairness.AT_ONCE,
        help="requests to each of two gateways at once, for the fairness measurement (0: none)",
    )
    parser.add_argument("--quick", action="store_true", help="K = 1, 5 only (smoke test)")
    args = parser.parse_args(argv)
    loads = (1, 5) if args.quick else tuple(int(k) for k in args.loads.split(","))
    say(machine_line(machine()))
    r = run(
        loads,
        providers=args.providers,
        slots=args.slots,
        per_session=args.per_session,
        gen_ms=args.gen_ms,
        judge_ms=args.judge_ms,
        fairness_k=5 if args.quick else args.fairness,
    )
    say(describe(r))
    say(table(CAPACITY_HEADERS, capacity_rows(r)))
    for row in r["rows"]:
        if row["errors"]:
            say(f"K={row['k']} errors: {'; '.join(row['errors'])}")
    fair = r["fairness"]
    if fair:
        say(f"fairness: {fairness.describe(fair)}")
        say(table(fairness.FAIRNESS_HEADERS, fairness.fairness_rows(fair)))
        for lead in fair["leaders"]:
            if lead["errors"]:
                say(f"leader {lead['leader']} errors: {'; '.join(lead['errors'])}")
    answered = all(row["success"] == 1.0 for row in r["rows"])
    if fair:
        answered = answered and all(lead["ok"] == lead["k"] for lead in fair["leaders"])
    return 0 if answered else 1


if __name__ == "__main__":
    raise SystemExit(main())
