"""The experiment's output: markdown tables, a terminal chart and a PNG chart.

Everything here reads a finished :class:`Study`; nothing runs sessions. matplotlib is imported
only by :func:`write_png` (Agg backend, no display needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from node.simulate.experiment import AGGREGATOR_ROWS, ScenarioResult, SimConfig

__all__ = ["LABELS", "Study", "markdown", "terminal_chart", "write_png"]

LABELS = {
    "mean": "mean",
    "median": "median",
    "trimmed": "trimmed",
    "robust-flat": "robust, no reputation",
    "robust": "robust (default)",
}
_BAR = 40


@dataclass(slots=True)
class Study:
    """All scenarios of one ``rnet sim`` run."""

    config: SimConfig
    collusion: list[ScenarioResult]  # colluding verifiers at each fraction, reputation roles
    behaviours: list[ScenarioResult]  # other behaviours at the focus fraction
    roles: list[ScenarioResult]  # uniform roles and waves of new identities
    focus: float  # the fraction the behaviour table and the timeline use
    command: str = ""


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def _recovery(result: ScenarioResult, row: str) -> str:
    if result.scenario.fraction == 0 and not result.scenario.waves:
        return "-"
    value = result.outcomes[row].recovery(result.recovery_window())
    return f"> {len(result.outcomes[row].wins)}" if value is None else str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def markdown(study: Study) -> str:
    """The tables (GitHub markdown)."""
    c = study.config
    cols = [LABELS[r] for r in AGGREGATOR_ROWS]
    out = [
        f"Seed {c.seed}; per scenario {c.warmup} warm-up sessions (adversaries judge honestly, "
        f"reputation builds; their own answers are poor throughout) then {c.sessions} measured sessions under attack; {c.population} peers, "
        f"{c.joiners} joiners per session ({c.executors} execute, the rest judge), honest judge "
        f"noise {c.noise}. Roles by reputation (the default) unless said otherwise.",
        "",
    ]
    if study.command:
        out += [f"`{study.command}`", ""]
    out += ["**Winner is the truly best answer** (colluding verifiers)", ""]
    rows = []
    for r in study.collusion:
        best = [_pct(r.outcomes[a].best) for a in AGGREGATOR_ROWS]
        rows.append(
            [_pct(r.scenario.fraction), *best, _pct(r.adversary_seats), _pct(r.adversary_weight)]
        )
    out += _table(["colluding", *cols, "their verifier seats", "their robust weight"], rows)
    out += ["", "**Mean true quality lost against the best answer** (0 to 0.99)", ""]
    rows = [
        [_pct(r.scenario.fraction), *(f"{r.outcomes[a].mean_lost:.3f}" for a in AGGREGATOR_ROWS)]
        for r in study.collusion
    ]
    out += _table(["colluding", *cols], rows)
    out += [
        "",
        "**Sessions until the best-answer rate is back within 5 points of the honest judges' "
        "own, for good** (windowed; `> N`: not within the run)",
        "",
    ]
    rows = [
        [_pct(r.scenario.fraction), *(_recovery(r, a) for a in AGGREGATOR_ROWS)]
        for r in study.collusion
    ]
    out += _table(["colluding", *cols], rows)
    out += ["", f"**Other judges at {_pct(study.focus)}**: winner is the truly best answer", ""]
    rows = [
        [r.scenario.behaviour.value, *(_pct(r.outcomes[a].best) for a in AGGREGATOR_ROWS)]
        for r in study.behaviours
    ]
    out += _table(["behaviour", *cols], rows)
    out += ["", "**Roles by reputation, and waves of new identities** (colluding)", ""]
    rows = [
        [
            r.scenario.name,
            _pct(r.adversary_seats),
            _pct(r.adversary_weight),
            _pct(r.outcomes["mean"].best),
            _pct(r.outcomes["robust"].best),
            f"{r.outcomes['robust'].mean_quality:.3f}",
        ]
        for r in study.roles
    ]
    header = ["scenario", "their verifier seats", "their robust weight", "best: mean"]
    header += ["best: robust (default)", "winning answer's quality, robust"]
    out += _table(header, rows)
    return "\n".join(out) + "\n"


def headline(study: Study) -> str:
    """The one line the issue asks for: the default at the focus fraction, the mean beside it."""
    for r in study.collusion:
        if abs(r.scenario.fraction - study.focus) < 1e-9:
            robust, mean = r.outcomes["robust"].best, r.outcomes["mean"].best
            return (
                f"at {_pct(study.focus)} colluding verifiers the default aggregator (robust) "
                f"picked the best answer in {_pct(robust)} of sessions; the mean in {_pct(mean)}"
            )
    return ""


def terminal_chart(study: Study) -> str:
    """Plain-text bars: best-answer rate per aggregator at each colluding fraction."""
    lines = ["winner is the truly best answer, colluding verifiers (each # = 2.5%)"]
    width = max(len(LABELS[a]) for a in AGGREGATOR_ROWS)
    for r in study.collusion:
        lines.append(f"{_pct(r.scenario.fraction):>6} colluding")
        for a in AGGREGATOR_ROWS:
            best = r.outcomes[a].best
            bar = "#" * round(best * _BAR)
            lines.append(f"  {LABELS[a]:<{width}} |{bar:<{_BAR}}| {_pct(best):>6}")
    return "\n".join(lines) + "\n"


def _rolling(values: Sequence[bool], window: int) -> list[float]:
    out, run = [], 0
    for i, v in enumerate(values):
        run += v
        if i >= window:
            run -= values[i - window]
        out.append(run / min(i + 1, window))
    return out


def write_png(study: Study, path: Path) -> Path:
    """Two panels: best-answer rate against the colluding share, and the rate over the
    sessions after the attack starts at the focus share (rolling window)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # after use("Agg"): no display is ever opened

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=100)
    xs = [r.scenario.fraction * 100 for r in study.collusion]
    for a in AGGREGATOR_ROWS:
        ys = [r.outcomes[a].best * 100 for r in study.collusion]
        bold = a == "robust"
        left.plot(xs, ys, marker="o", linewidth=2.5 if bold else 1.2, label=LABELS[a])
    left.set(
        xlabel="colluding verifiers (% of peers)",
        ylabel="winner is the truly best answer (%)",
        ylim=(0, 100),
        title="Aggregators under collusion",
    )
    left.axhline(90, color="grey", linestyle=":", linewidth=1)
    left.legend(fontsize=8, loc="lower left")
    focus = next(
        (r for r in study.collusion if abs(r.scenario.fraction - study.focus) < 1e-9), None
    )
    if focus is not None:
        window = focus.recovery_window()
        for a in AGGREGATOR_ROWS:
            ys = [v * 100 for v in _rolling(focus.outcomes[a].wins, window)]
            right.plot(range(1, len(ys) + 1), ys, linewidth=2.5 if a == "robust" else 1.0)
        ref = [v * 100 for v in _rolling(focus.outcomes["robust"].reference, window)]
        right.plot(range(1, len(ref) + 1), ref, "k--", linewidth=1, label="honest judges alone")
        right.set(
            xlabel="sessions since the attack started",
            ylabel=f"best-answer rate, last {window} sessions (%)",
            ylim=(0, 100),
            title=f"{_pct(study.focus)} colluding: reputation at work",
        )
        right.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"rnet sim (seed {study.config.seed})", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
