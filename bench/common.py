"""Shared bench helpers: statistics, the machine description, tables, the results files."""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import platform
import statistics
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def median(values: Iterable[float]) -> float:
    data = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(data) if data else math.nan


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0..100), linear between closest ranks; NaN for no data."""
    data = sorted(v for v in values if v is not None and not math.isnan(v))
    if not data:
        return math.nan
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def p95(values: Iterable[float]) -> float:
    return percentile(values, 95)


def summary(values: Sequence[float]) -> dict[str, float]:
    """median / p95 / min / max / n of a sample (in the unit given)."""
    data = [v for v in values if v is not None and not math.isnan(v)]
    return {
        "n": len(data),
        "median": median(data),
        "p95": p95(data),
        "min": min(data) if data else math.nan,
        "max": max(data) if data else math.nan,
    }


def machine() -> dict[str, Any]:
    """What the numbers were measured on (and how loaded it was when we started)."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = (math.nan, math.nan, math.nan)
    import importlib.metadata as md

    versions = {}
    for dist in ("libp2p", "trio", "textual", "msgpack", "PyNaCl"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = "?"
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg_at_start": [round(x, 2) for x in load],
        "packages": versions,
    }


def machine_line(m: dict[str, Any]) -> str:
    load = m.get("loadavg_at_start") or []
    load_txt = "/".join(f"{x:.1f}" for x in load) if load else "?"
    return (
        f"{m['date']} · {m['nproc']} CPU ({m['cpu']}) · Python {m['python']} · "
        f"libp2p {m['packages'].get('libp2p', '?')} · load avg at start {load_txt}"
    )


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table with right-aligned columns (first column left-aligned)."""
    cells = [[str(h) for h in headers]] + [
        [fmt(c) if not isinstance(c, str) else c for c in r] for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        parts = [
            row[i].ljust(widths[i]) if i == 0 else row[i].rjust(widths[i]) for i in range(len(row))
        ]
        lines.append("  ".join(parts))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for r in rows:
        out.append("| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in r) + " |")
    return "\n".join(out)


def goal(
    name: str, value: float, limit: float, unit: str = "", *, lower_is_better: bool = True
) -> dict[str, Any]:
    """One goal line: met or not, and by how much (relative to the limit)."""
    if value is None or math.isnan(value):
        return {"name": name, "value": None, "limit": limit, "unit": unit, "met": None}
    met = value <= limit if lower_is_better else value >= limit
    return {
        "name": name,
        "value": value,
        "limit": limit,
        "unit": unit,
        "met": met,
        "margin_pct": (limit - value) / limit * 100 if limit else math.nan,
        "at_least": not lower_is_better,
    }


def goal_line(g: dict[str, Any]) -> str:
    unit = g.get("unit") or ""
    if g.get("met") is None:
        return f"- {g['name']}: not measured ({g.get('note', 'skipped')})"
    value, limit = g["value"], g["limit"]
    verdict = "met" if g["met"] else "NOT met"
    at_least = g.get("at_least", False)
    if g["met"]:
        how = f"{abs(g['margin_pct']):.0f}% {'over' if at_least else 'under'} the limit"
    else:
        how = f"{value / limit:.2f}x the limit" if limit else "over"
    note = f" — {g['note']}" if g.get("note") else ""
    sign = ">=" if at_least else "<="
    return (
        f"- {g['name']}: {fmt(value, 2)}{unit} vs {sign} {fmt(limit, 2)}{unit}: "
        f"**{verdict}** ({how}){note}"
    )


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN -> None, tuples -> lists, keys -> str."""
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def write_results(results: dict[str, Any], markdown: str, directory: Path | None = None) -> Path:
    """``latest.json`` and ``latest.md`` in ``bench/results/`` (gitignored); returns the dir."""
    out = directory or RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(_clean(results), indent=2) + "\n", encoding="utf-8")
    (out / "latest.md").write_text(markdown, encoding="utf-8")
    return out


def say(text: str = "") -> None:
    """Progress and tables go to stdout, flushed (a long run shows where it is)."""
    print(text, flush=True)


def progress(text: str) -> None:
    """Progress notes on stderr so stdout stays the tables."""
    print(f"[bench] {text}", file=sys.stderr, flush=True)
