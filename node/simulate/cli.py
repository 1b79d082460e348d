"""``rnet sim`` (also ``python -m node.simulate``): flags, the study, what is printed and saved."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from node.simulate.experiment import Scenario, SimConfig, run_scenario
from node.simulate.report import Study, headline, markdown, terminal_chart, write_png
from node.simulate.world import BEHAVIOURS, Behaviour

__all__ = ["configure", "main", "run", "run_study"]

logger = logging.getLogger(__name__)

DEFAULT_FRACTIONS = "0,10,20,30,40,50"
_DEFAULTS = SimConfig()


def _fractions(text: str) -> list[float]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of percentages: {text!r}") from None
    if not values or any(not 0 <= v <= 90 for v in values):
        raise argparse.ArgumentTypeError("percentages must be between 0 and 90")
    return [v / 100 for v in sorted(set(values))]


def configure(parser: argparse.ArgumentParser) -> None:
    """The flags of ``rnet sim``."""
    parser.description = (
        "The Byzantine experiment: run thousands of swarm sessions in this process (the real "
        "session machines on a simulated network and clock; no model, no network) with "
        "executors of known answer quality and verifiers that are honest-but-noisy, lazy, "
        "random, inverting or colluding, plus waves of new identities. Prints, per aggregator "
        "and share of adversarial verifiers, how often the winner is the truly best answer, the "
        "quality lost against the best and how many sessions reputation needs to recover, as "
        "tables and a text chart; writes the tables (sim.md) and a chart (sim.png) to --out. "
        "SIMULATED: numbers describe this model of the world, not a real swarm."
    )
    parser.add_argument(
        "--sessions",
        type=int,
        default=_DEFAULTS.sessions,
        metavar="N",
        help=f"measured sessions per scenario, after the warm-up (default: {_DEFAULTS.sessions})",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=_DEFAULTS.warmup,
        metavar="N",
        help="sessions before the attack starts: adversaries judge honestly, reputation builds "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=_DEFAULTS.seed, help="random seed (default: %(default)s)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="directory for sim.md and sim.png (default: the current directory)",
    )
    parser.add_argument(
        "--no-png", action="store_true", help="do not draw sim.png (matplotlib not needed)"
    )
    parser.add_argument(
        "--fractions",
        type=_fractions,
        default=_fractions(DEFAULT_FRACTIONS),
        metavar="P,P,...",
        help=f"colluding shares to test, in percent (default: {DEFAULT_FRACTIONS})",
    )
    parser.add_argument(
        "--focus",
        type=int,
        default=30,
        metavar="P",
        help="share (percent) for the other behaviours, the role table and the timeline "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--population",
        type=int,
        default=_DEFAULTS.population,
        metavar="N",
        help="peers in the swarm (default: %(default)s)",
    )
    parser.add_argument(
        "--joiners",
        type=int,
        default=_DEFAULTS.joiners,
        metavar="N",
        help="peers joining each session (default: %(default)s)",
    )
    parser.add_argument(
        "--executors",
        type=int,
        default=_DEFAULTS.executors,
        metavar="K",
        help="of which K execute, the rest judge (default: %(default)s)",
    )
    parser.add_argument(
        "--noise",
        type=float,
        default=_DEFAULTS.noise,
        metavar="SD",
        help="standard deviation of an honest judge's score around the true quality "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--waves",
        type=int,
        default=3,
        metavar="N",
        help="waves of new colluding identities in the role table (default: %(default)s)",
    )
    parser.add_argument(
        "--wave-size",
        type=int,
        default=20,
        metavar="N",
        help="new identities per wave (default: %(default)s)",
    )


def run_study(
    config: SimConfig,
    fractions: Sequence[float],
    *,
    focus: float = 0.3,
    waves: int = 3,
    wave_size: int = 20,
    progress: bool = False,
) -> Study:
    """Every scenario of the report, in a fixed order (each seeded from the config)."""

    def one(scenario: Scenario):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        result = run_scenario(config, scenario)
        if progress:
            took = time.perf_counter() - started
            print(f"  {scenario.name}: {result.sessions} sessions in {took:.1f} s", file=sys.stderr)
        return result

    grid = sorted(set(fractions) | {focus})
    collusion = [one(Scenario(Behaviour.COLLUDING, f)) for f in grid]
    by_fraction = {r.scenario.fraction: r for r in collusion}
    behaviours = [
        one(Scenario(Behaviour(b), focus)) for b in BEHAVIOURS if b != Behaviour.COLLUDING
    ]
    behaviours.append(by_fraction[focus])
    roles = [
        one(Scenario(Behaviour.COLLUDING, focus, selection=False)),
        by_fraction[focus],
    ]
    if waves and wave_size:
        for selection in (False, True):
            scenario = Scenario(
                Behaviour.COLLUDING, 0.0, selection=selection, waves=waves, wave_size=wave_size
            )
            roles.append(one(scenario))
    return Study(config, collusion, behaviours, roles, focus)


def run(args: argparse.Namespace) -> int:
    try:
        config = SimConfig(
            sessions=args.sessions,
            warmup=args.warmup,
            population=args.population,
            joiners=args.joiners,
            executors=args.executors,
            noise=args.noise,
            seed=args.seed,
        )
        if not 0 <= args.focus <= 90:
            raise ValueError("--focus must be between 0 and 90")
        if args.waves < 0 or args.wave_size < 0:
            raise ValueError("--waves and --wave-size must be >= 0")
    except ValueError as exc:
        print(f"rnet sim: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    print("rnet sim: SIMULATED sessions (no model, no network)", file=sys.stderr)
    study = run_study(
        config,
        args.fractions,
        focus=args.focus / 100,
        waves=args.waves,
        wave_size=args.wave_size,
        progress=True,
    )
    tail = sys.argv[1:]
    tail = tail[1:] if tail[:1] == ["sim"] else tail  # `rnet sim ...` or `python -m node.simulate`
    study.command = " ".join(["rnet sim", *(shlex.quote(a) for a in tail)])
    text = markdown(study)
    print(text)
    print(terminal_chart(study))
    line = headline(study)
    if line:
        print(line)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sim.md").write_text(text, encoding="utf-8")
    saved = [str(args.out / "sim.md")]
    if not args.no_png:
        saved.append(str(write_png(study, args.out / "sim.png")))
    took = time.perf_counter() - started
    print(f"saved {', '.join(saved)} ({took:.1f} s)", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rnet sim")
    configure(parser)
    return run(parser.parse_args(argv))
