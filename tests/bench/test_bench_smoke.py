"""Every bench script still runs: a tiny configuration of each part, no timing assertions.

One small swarm (bootstrap + leader + 2 zero-model-time providers, real processes) is shared by
the floor, session, resources and overlap parts; the console part runs headless in process. The
assertions are about the shape and sanity of what the scripts report, never about speed.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest

from bench import __main__ as bench_main
from bench import capacity, fairness, overlap, resources, session, ui
from bench.cluster import Cluster, proc_cpu_seconds, proc_rss_bytes
from bench.common import p95, percentile, summary, write_results
from bench.floor import measure_floor

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Any, list[Any]]]:
    with Cluster(kinds={"message"}, workdir=tmp_path_factory.mktemp("bench")) as cluster:
        cluster.start_bootstrap()
        (leader,) = cluster.start_nodes(["leader"], ["--no-auto-join"], role="leader")
        providers = cluster.add_providers(2, session.ZERO_MODEL_TIME)
        yield cluster, leader, providers


def test_statistics_helpers() -> None:
    assert percentile([1, 2, 3, 4, 5], 50) == 3
    assert p95([10.0] * 19 + [30.0]) == pytest.approx(19.0 + 0.0, abs=11)
    assert math.isnan(p95([]))
    s = summary([3.0, 1.0, 2.0])
    assert (s["n"], s["median"], s["min"], s["max"]) == (3, 2.0, 1.0, 3.0)


def test_fairness_window_ends_at_the_first_leader_done() -> None:
    def outs(*ends: float) -> list[dict[str, Any]]:
        return [{"ok": True, "end": t} for t in ends]

    # A done at 3.0; B finished 2 of its answers by then (its 4.0 and 5.0 came after)
    assert fairness.shares([outs(1.0, 2.0, 3.0), outs(0.5, 3.0, 4.0, 5.0)]) == (3.0, [3, 2])
    # a leader with no answer at all: the window is the whole run, and it has none of it
    starved = [{"ok": False, "end": 9.0}]
    assert fairness.shares([outs(1.0, 2.0), starved]) == (2.0, [2, 0])


def test_floor_session_resources_and_overlap_on_one_swarm(
    swarm: tuple[Cluster, Any, list[Any]], tmp_path: Any
) -> None:
    cluster, leader, providers = swarm
    assert proc_cpu_seconds(leader.pid) > 0
    assert proc_rss_bytes(leader.pid) > 10 * 2**20

    floor = measure_floor(leader, providers, reps=2, topic="smoke-floor")
    assert floor["failures"] == 0 and floor["all_ms"]["n"] == 2
    assert floor["all_ms"]["median"] >= floor["first_ms"]["median"] > 0

    r = session.measure_size(cluster, leader, providers, sessions=1, floor_per_session=1)
    assert r["sessions"] == 1 and r["failed"] == 0 and r["with_missing"] == 0
    assert r["wall_ms"]["median"] > 0 and r["ratio"] > 0
    assert r["stages_ms_median"]["total"] > 0
    assert r["cpu_s_per_session"]["all_nodes"] > 0
    assert len(session.session_rows([r, {"providers": 24, "skipped": "skipped: test"}])) == 2

    res = resources.measure(cluster, leader, providers, sessions=2)
    assert res["failed"] == 0
    assert 10 < res["provider_rss_last_mb"] < 2000
    assert res["sqlite"]["leader"]["logical_bytes_total"] > 0
    assert len(resources.resource_rows(res)) == 4  # 2 providers, leader, bootstrap

    ov = overlap.run(1, gen_ms=0, judge_ms=0, cluster=cluster, providers=2)
    assert ov["sessions"] == 1 and ov["failed"] == 0 and ov["ratio"] > 0

    results = {
        "machine": bench_main.machine(),
        "revision": "test",
        "sessions": [r],
        "overlap": ov,
        "resources": res,
        "elapsed_s": 1.0,
    }
    results["goals"] = bench_main.build_goals(results)
    assert {g["met"] for g in results["goals"]} <= {True, False}
    md = bench_main.markdown(results)
    out = write_results(results, md, tmp_path)
    assert json.loads((out / "latest.json").read_text())["sessions"][0]["providers"] == 2
    assert "**Goals**" in (out / "latest.md").read_text()


def test_capacity_through_the_gateway(tmp_path: Any) -> None:
    r = capacity.run(
        (1, 3), providers=3, slots=1, per_session=2, gen_ms=50, judge_ms=20, fairness_k=3
    )
    assert [row["k"] for row in r["rows"]] == [1, 3]
    assert all(row["success"] == 1.0 for row in r["rows"]), r["rows"]
    # 3 providers x 1 slot, 2 per session: one session at once; 3 requests = 2 rounds at least
    assert r["rows"][1]["ideal"]["at_once"] == 1
    assert r["rows"][1]["ideal"]["wall_s"] == pytest.approx(3 * 0.07)
    assert all(row["ratio"] > 0 and row["p95_s"] >= row["p50_s"] > 0 for row in r["rows"])
    assert len(capacity.capacity_rows(r)) == 2 and "floor(3 x 1 / 2)" in capacity.describe(r)
    fair = r["fairness"]
    scaled = {**r, "rows": [{**r["rows"][1], "k": 20}], "fairness": {**fair, "k": 40}}
    goals = bench_main.build_goals({"capacity": scaled})
    assert [g["name"] for g in goals] == [
        "capacity K=20: requests answered",
        "capacity K=20: throughput / ideal",
        "fairness: the smaller leader share while both were busy",
    ]
    assert goals[0]["met"] is True
    # two gateways, 3 requests each at once: every one answered, shares of the window sum to 1
    assert [lead["ok"] for lead in fair["leaders"]] == [3, 3], fair
    assert sum(lead["share"] for lead in fair["leaders"]) == pytest.approx(1.0)
    assert fair["window_s"] > 0 and len(fairness.fairness_rows(fair)) == 2
    assert "Fairness" in bench_main.markdown({"machine": bench_main.machine(), "capacity": r})
    # 3 requests each are a race, not a share: no goal line for them
    assert not [g for g in bench_main.build_goals({"capacity": r}) if "fairness" in g["name"]]


def test_console_burst_headless() -> None:
    events = ui.runtime_events(40, tag="t-")
    assert {e.event for e in events} == {"session", "peer_info", "message", "log"}
    r = asyncio.run(ui._headless(bursts=1, events_per_burst=100, stream=False))
    assert r["burst"]["latency_ms"]["n"] == 100
    assert r["mount_to_first_frame_s"] > 0
    assert r["log_tail_ok"] is True
    rows = ui.ui_rows({"imports_s": {}, **r})
    assert any("burst of 100" in row[0] for row in rows)
