"""Fairness: two leaders (two ``rnet serve`` gateways) load the same providers at once.

Part of the capacity benchmark (``bench.capacity`` runs it on its swarm after the K loads).
Each gateway is sent K requests at the same moment; both then keep the swarm saturated until
one of them has its last answer. A provider whose slots are full remembers the adverts and,
when a slot frees, joins the leader it served longest ago (``protocol.capacity.GatheringAdverts``),
so each leader should get about half of the sessions completed while both were busy.

Per leader: requests answered, p50/p95 latency (queue wait included), and its share of the
sessions completed during the contended window: from the moment both were sent their requests
to the first moment one of them had no request left (its last answer). Fair = 0.5 each; a
starved leader would complete few or none in that window.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from bench.common import percentile

REQUEST_TIMEOUT_S = 300.0
AT_ONCE = 40
LEADERS = "ABCDEFGH"


async def _fire(
    http: aiohttp.ClientSession, url: str, k: int, tag: str, t0: float
) -> list[dict[str, Any]]:
    """``k`` requests at once to one gateway; each one's outcome and end time (from ``t0``)."""

    async def one(i: int) -> dict[str, Any]:
        body = {"model": "swarm", "prompt": f"{tag} question {i}?", "stream": False}
        started = time.perf_counter()
        try:
            async with http.post(f"{url}/api/generate", json=body) as reply:
                data = await reply.json(content_type=None)
                ok = reply.status == 200 and bool(data.get("response"))
                error = "" if ok else str(data.get("error", reply.status))
        except (aiohttp.ClientError, TimeoutError) as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}"
        ended = time.perf_counter()
        return {"ok": ok, "s": ended - started, "end": ended - t0, "error": error}

    return list(await asyncio.gather(*(one(i) for i in range(k))))


async def contend(
    urls: Sequence[str], counts: Sequence[int], timeout_s: float = REQUEST_TIMEOUT_S
) -> list[list[dict[str, Any]]]:
    """``counts[i]`` requests to gateway ``urls[i]``, all at the same moment; per gateway, each
    request's ``ok``, latency ``s``, ``end`` (seconds from the start) and ``error``. (The
    multi-process fairness test uses it too.)"""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        t0 = time.perf_counter()
        return list(
            await asyncio.gather(
                *(
                    _fire(http, url, k, f"leader{i}", t0)
                    for i, (url, k) in enumerate(zip(urls, counts, strict=True))
                )
            )
        )


def shares(outcomes: Sequence[Sequence[dict[str, Any]]]) -> tuple[float, list[int]]:
    """The contended window (seconds from the start to the first leader's last answer) and
    each leader's sessions completed within it."""
    ends = [[o["end"] for o in per if o["ok"]] for per in outcomes]
    if not all(ends):
        # a leader with no answer at all was starved for the whole run
        window = max((max(e) for e in ends if e), default=0.0)
    else:
        window = min(max(e) for e in ends)
    return window, [sum(1 for t in e if t <= window) for e in ends]


def measure(urls: Sequence[str], k: int = AT_ONCE) -> dict[str, Any]:
    """``k`` requests to each gateway at the same moment; per leader and the window's shares."""
    outcomes = asyncio.run(contend(urls, [k] * len(urls)))
    window, in_window = shares(outcomes)
    total = sum(in_window)
    leaders = []
    for name, per, done in zip(LEADERS, outcomes, in_window, strict=False):
        good = [o["s"] for o in per if o["ok"]]
        leaders.append(
            {
                "leader": name,
                "k": k,
                "ok": len(good),
                "p50_s": percentile(good, 50),
                "p95_s": percentile(good, 95),
                "last_s": max((o["end"] for o in per if o["ok"]), default=float("nan")),
                "in_window": done,
                "share": done / total if total else float("nan"),
                "errors": sorted({o["error"] for o in per if not o["ok"]})[:5],
            }
        )
    return {"k": k, "window_s": window, "leaders": leaders}


FAIRNESS_HEADERS = [
    "leader",
    "answered",
    "p50 s",
    "p95 s",
    "last answer s",
    "done while both busy",
    "share (fair 0.50)",
]


def fairness_rows(f: dict[str, Any]) -> list[list[str]]:
    return [
        [
            lead["leader"],
            f"{lead['ok']}/{lead['k']}",
            f"{lead['p50_s']:.2f}",
            f"{lead['p95_s']:.2f}",
            f"{lead['last_s']:.2f}",
            f"{lead['in_window']} in {f['window_s']:.1f} s",
            f"{lead['share']:.2f}",
        ]
        for lead in f["leaders"]
    ]


def describe(f: dict[str, Any]) -> str:
    return (
        f"two gateways (two leaders) sent {f['k']} requests each at the same moment, on the same "
        "providers; share = a leader's sessions completed while both still had requests "
        "(until the first one's last answer) over both leaders' (fair = 0.50)"
    )
