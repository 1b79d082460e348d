"""A run's report: per method accuracy with its 95% Wilson interval (and, for a simulated swarm,
the accuracy the simulation's parameters predict), latency p50/p95, cost per question, and the
paired McNemar tests swarm vs single and swarm vs majority. As a markdown table, a JSON file and
a PNG chart. Simulated runs say so in each of them.
"""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

from node.evaluate.predict import majority as predict_majority
from node.evaluate.predict import swarm as predict_swarm
from node.evaluate.runner import METHODS
from node.evaluate.runs import Run
from node.evaluate.stats import paired, percentile, wilson
from node.slm.sim import PROFILE_P, PROFILE_Q

SIMULATED_NOTE = "SIMULATED: sim backend, no language model ran"


def _mode(values: list[int]) -> int:
    return Counter(values).most_common(1)[0][0] if values else 0


def is_simulated(run: Run) -> bool:
    models = [e["model"] or "" for r in run.records for e in r["executors"]]
    models += [r["single"].get("model") or "" for r in run.records]
    return bool(models) and any(m.startswith("sim/") for m in models)


def sim_setting(sim: dict[str, Any] | None) -> tuple[float, float | None] | None:
    """(p, q) the eval's sim flags imply, or None when there is nothing to predict."""
    if not sim:
        return None
    profile = sim.get("profile") or "honest"
    if profile not in ("honest", "noisy", "lazy"):
        return None  # adversarial and faulty swarms have no closed form here
    p = sim.get("p")
    q = sim.get("q")
    p = PROFILE_P[profile] if p is None else float(p)
    if profile == "lazy":
        return p, None
    return p, PROFILE_Q[profile] if q is None else float(q)


def _predictions(run: Run) -> dict[str, float] | None:
    setting = sim_setting(run.settings.get("sim"))
    records = run.records
    if setting is None or not records or not is_simulated(run):
        return None
    if any(r["wrong_count"] is None for r in records):
        return None  # a question the simulation does not know
    p, q = setting
    swarm = majority = 0.0
    for r in records:
        e, v, k = len(r["executors"]), r["verifiers"], max(1, r["wrong_count"])
        if e == 0 or v == 0:
            continue  # a failed session: predicted as wrong
        swarm += predict_swarm(e, v, k, p, q)
        majority += predict_majority(e, k, p)
    n = len(records)
    return {"swarm": swarm / n, "majority": majority / n, "executor": p, "single": p}


def summarize(run: Run) -> dict[str, Any]:
    records = run.records
    settings = run.settings
    execs = _mode([len(r["executors"]) for r in records])
    verifiers = _mode([r["verifiers"] for r in records])
    single_label = (
        f"single: {settings['single']}, asked directly"
        if settings.get("single")
        else "single: one executor, drawn per question"
    )
    labels = {
        "swarm": f"swarm: winner of pipe {settings.get('providers')}",
        "majority": f"majority vote of {execs} executor{'s' if execs != 1 else ''}",
        "executor": "each executor alone (pooled)",
        "single": single_label,
    }
    outcomes: dict[str, list[bool]] = {
        "swarm": [r["swarm"]["correct"] for r in records],
        "majority": [r["majority"]["correct"] for r in records],
        "executor": [e["correct"] for r in records for e in r["executors"]],
        "single": [r["single"]["correct"] for r in records],
    }
    latency = {
        "swarm": [r["swarm"]["ms"] for r in records],
        "majority": [r["majority"]["ms"] for r in records],
        "executor": [r["executor_ms"] for r in records],
        "single": [r["single"]["ms"] for r in records],
    }
    predicted = _predictions(run)
    methods: dict[str, Any] = {}
    for m in METHODS:
        ok, n = sum(outcomes[m]), len(outcomes[m])
        lo, hi = wilson(ok, n)
        costs = [r["cost"][m] for r in records]
        methods[m] = {
            "label": labels[m],
            "n": n,
            "correct": ok,
            "accuracy": ok / n if n else None,
            "ci95": [lo, hi],
            "predicted": predicted[m] if predicted else None,
            "latency_ms": {"p50": percentile(latency[m], 50), "p95": percentile(latency[m], 95)},
            "calls_per_question": sum(c["calls"] for c in costs) / len(costs) if costs else 0,
            "tokens_per_question": sum(c["tokens"] for c in costs) / len(costs) if costs else 0,
        }
    tests = {}
    for other in ("single", "majority"):
        t = paired(outcomes["swarm"], outcomes[other])
        tests[f"swarm_vs_{other}"] = {"swarm_only": t.b, "other_only": t.c, "p_value": t.p_value}
    simulated = is_simulated(run)
    return {
        "run": run.id,
        "simulated": simulated,
        "note": SIMULATED_NOTE if simulated else "",
        "settings": settings,
        "questions": len(run.questions),
        "answered": len(records),
        "finished": run.finished_ms is not None,
        "executors_per_session": execs,
        "verifiers_per_session": verifiers,
        "failed_sessions": sum(1 for r in records if r["swarm"]["error"]),
        "methods": methods,
        "paired": tests,
    }


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"


def markdown(summary: dict[str, Any]) -> str:
    s = summary["settings"]
    head = f"**rnet eval {summary['run']}**"
    if summary["simulated"]:
        head += f" -- **{SIMULATED_NOTE}**"
    lines = [
        head,
        "",
        f"{summary['answered']}/{summary['questions']} questions from `{s.get('source')}`; "
        f"sessions of {s.get('providers')} providers ({summary['executors_per_session']} "
        f"executors, {summary['verifiers_per_session']} verifiers); seed {s.get('seed')}"
        + (
            f"; {summary['failed_sessions']} session(s) failed"
            if summary["failed_sessions"]
            else ""
        )
        + ("" if summary["finished"] else "; **unfinished** (`--resume` continues it)"),
    ]
    if s.get("sim"):
        lines.append(
            f"simulation: {json.dumps(s['sim'], sort_keys=True)} (the prediction assumes every "
            "provider runs these)"
        )
    has_pred = any(m["predicted"] is not None for m in summary["methods"].values())
    cols = ["method", "accuracy", "95% CI"] + (["predicted"] if has_pred else [])
    cols += ["n", "p50 ms", "p95 ms", "calls/q", "≈tokens/q"]
    lines += ["", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for m in summary["methods"].values():
        lo, hi = m["ci95"]
        row = [m["label"], _pct(m["accuracy"]), f"{_pct(lo)} to {_pct(hi)}"]
        if has_pred:
            row.append(_pct(m["predicted"]))
        row += [
            str(m["n"]),
            _ms(m["latency_ms"]["p50"]),
            _ms(m["latency_ms"]["p95"]),
            f"{m['calls_per_question']:.1f}",
            f"{m['tokens_per_question']:.0f}",
        ]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for name, t in summary["paired"].items():
        other = name.removeprefix("swarm_vs_")
        lines.append(
            f"- swarm vs {other} (exact McNemar): swarm right and {other} wrong on "
            f"{t['swarm_only']}, the reverse on {t['other_only']}, p = {t['p_value']:.3g}"
        )
    return "\n".join(lines) + "\n"


def chart(summary: dict[str, Any], path: Path) -> Path:
    """A PNG bar chart of accuracy per method with its 95% interval (and the prediction)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file, from any process
    import matplotlib.pyplot as plt

    methods = list(summary["methods"].values())
    acc = [100 * (m["accuracy"] or 0) for m in methods]
    # error bars from the interval; never negative (matplotlib refuses those)
    err = [
        [max(0.0, a - 100 * m["ci95"][0]) for a, m in zip(acc, methods, strict=True)],
        [max(0.0, 100 * m["ci95"][1] - a) for a, m in zip(acc, methods, strict=True)],
    ]
    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=110)
    xs = range(len(methods))
    ax.bar(xs, acc, yerr=err, capsize=6, color=["#3b7dd8", "#7a9cc6", "#a9b8cc", "#c9a46b"])
    preds = [(x, 100 * m["predicted"]) for x, m in zip(xs, methods, strict=True) if m["predicted"]]
    if preds:
        ax.scatter(
            *zip(*preds, strict=True), marker="D", color="black", zorder=3, label="predicted"
        )
        ax.legend(loc="lower right")
    ax.set_xticks(list(xs), [textwrap.fill(m["label"], 20) for m in methods], fontsize=8)
    ax.set_ylabel("accuracy, % (95% Wilson interval)")
    ax.set_ylim(0, 105)
    title = f"rnet eval {summary['run']}: {summary['answered']} questions"
    if summary["simulated"]:
        title += f"\n{SIMULATED_NOTE}"
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write(summary: dict[str, Any], directory: Path) -> dict[str, Path]:
    """report.md, report.json and accuracy.png in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    md = directory / "report.md"
    md.write_text(markdown(summary), encoding="utf-8")
    js = directory / "report.json"
    js.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return {"markdown": md, "json": js, "chart": chart(summary, directory / "accuracy.png")}
