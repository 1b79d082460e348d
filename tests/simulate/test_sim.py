"""rnet sim: a tiny Byzantine experiment through the real session machines."""

from pathlib import Path

from node.simulate.cli import main
from node.simulate.experiment import Scenario, SimConfig, run_scenario
from node.simulate.world import Behaviour

TINY = SimConfig(sessions=200, warmup=60, population=24, joiners=9, executors=3, seed=7)


def test_robust_with_reputation_beats_the_mean_under_collusion() -> None:
    result = run_scenario(TINY, Scenario(Behaviour.COLLUDING, 0.3))
    robust, mean = result.outcomes["robust"], result.outcomes["mean"]
    assert result.rejected == 0  # the simulated network drove the machines by the rules
    assert len(robust.wins) == TINY.sessions and len(robust.warmup_wins) == TINY.warmup
    assert robust.best > mean.best + 0.1
    assert robust.mean_lost < mean.mean_lost
    assert robust.best >= 0.85
    # reputation found the colluders: they hold less of the tally's weight than of the seats
    assert result.adversary_weight < result.adversary_seats * 0.75


def test_the_run_is_reproducible_from_its_seed() -> None:
    small = SimConfig(sessions=40, warmup=10, population=16, joiners=7, executors=2, seed=3)
    a = run_scenario(small, Scenario(Behaviour.INVERTING, 0.2))
    b = run_scenario(small, Scenario(Behaviour.INVERTING, 0.2))
    assert a.outcomes["robust"].wins == b.outcomes["robust"].wins
    assert a.outcomes["mean"].lost == b.outcomes["mean"].lost
    assert a.messages == b.messages


def test_the_command_prints_tables_and_writes_the_chart(tmp_path: Path, capsys) -> None:
    argv = ["--sessions", "25", "--warmup", "10", "--population", "16", "--joiners", "7"]
    argv += ["--executors", "2", "--fractions", "0,30", "--waves", "1", "--wave-size", "4"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| colluding | mean | median | trimmed |" in out
    assert "at 30.0% colluding verifiers the default aggregator (robust)" in out
    assert (tmp_path / "sim.md").read_text().startswith("Seed 1;")
    png = (tmp_path / "sim.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_bad_flags_are_refused(capsys) -> None:
    assert main(["--joiners", "2"]) == 2
    assert "--joiners" in capsys.readouterr().err
