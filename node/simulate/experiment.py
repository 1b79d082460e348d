"""The Byzantine experiment: scenarios, the metrics each one yields, and the whole study.

One *scenario* is a population (honest peers and a share of adversarial ones with one
behaviour), a warm-up during which everyone behaves (reputation builds, nothing is measured
but the baseline), then the attack: ``sessions`` sessions in which the adversaries act. One
honest node leads every session and keeps the reputation ledger (its view is the one that
matters: its ledger weighs its tallies and picks its roles).

Each session runs once through the real machines; every aggregator is then applied to the same
signed score matrix (:func:`protocol.tally.tally`, the function the leader runs), so all
aggregators are compared on identical sessions (a paired comparison). ``robust`` uses the
ledger's verifier weights as they stood before the session; ``robust-flat`` is the same rule
with every weight 1.0 (what clipping alone buys).

Metrics per aggregator: *best* — share of sessions whose winner has the highest true quality;
*lost* — mean true quality lost against the best answer; *recovery* — sessions after the attack
starts until the best-answer rate over a window of sessions is back, for good, within 5 points
of what the honest verifiers alone would have achieved on the same sessions (0: it never fell
behind; ``None``: not within the run).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from node.simulate.network import SessionRun, SimNetwork
from node.simulate.world import Behaviour, SimPeer, World, make_peers
from protocol.identity import peer_id_from_public_key
from protocol.reputation import Ledger, Transcript
from protocol.tally import tally

__all__ = [
    "AGGREGATOR_ROWS",
    "Outcome",
    "Scenario",
    "ScenarioResult",
    "SimConfig",
    "run_scenario",
]

# the rows of every table; "robust" is the default aggregator with the ledger's weights
AGGREGATOR_ROWS = ("mean", "median", "trimmed", "robust-flat", "robust")
_RECOVERY_MARGIN = 0.05
_SESSION_GAP_MS = 60_000  # simulated time between sessions


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Sizes and world parameters shared by every scenario of a run."""

    sessions: int = 500  # measured sessions per scenario (after the warm-up)
    warmup: int = 150
    population: int = 40
    joiners: int = 12
    executors: int = 4
    noise: float = 0.07  # honest judges' score noise (standard deviation)
    canary_rate: float = 0.1  # the leader's default
    seed: int = 1

    def __post_init__(self) -> None:
        if self.sessions < 1 or self.warmup < 0:
            raise ValueError("--sessions must be >= 1 and --warmup >= 0")
        if not 3 <= self.joiners <= 64:
            raise ValueError("--joiners must be between 3 and 64")
        if not 1 <= self.executors < self.joiners - 1:
            raise ValueError("--executors must leave at least 2 verifiers")
        if self.population < self.joiners:
            raise ValueError("--population must be at least --joiners")
        if not 0 <= self.noise <= 1:
            raise ValueError("--noise must be in [0, 1]")


@dataclass(frozen=True, slots=True)
class Scenario:
    """Who attacks and how: ``fraction`` of the population behaves as ``behaviour``;
    ``waves`` waves of ``wave_size`` fresh colluding identities join during the attack;
    ``selection``: the leader picks verifiers by reputation (the node's default)."""

    behaviour: Behaviour
    fraction: float
    selection: bool = True
    waves: int = 0
    wave_size: int = 0

    @property
    def name(self) -> str:
        base = f"{self.behaviour.value} {round(self.fraction * 100)}%"
        if self.waves:
            base += f" + {self.waves}x{self.wave_size} new keys"
        return base + ("" if self.selection else ", uniform roles")


@dataclass(slots=True)
class Outcome:
    """One aggregator's record over a scenario."""

    warmup_wins: list[bool] = field(default_factory=list)
    wins: list[bool] = field(default_factory=list)
    lost: list[float] = field(default_factory=list)
    quality: list[float] = field(default_factory=list)  # true quality of each winning answer
    # per attack session: did the honest verifiers alone (robust, equal weights) pick the best?
    reference: list[bool] = field(default_factory=list)

    @property
    def best(self) -> float:
        return sum(self.wins) / len(self.wins) if self.wins else 0.0

    @property
    def mean_quality(self) -> float:
        return sum(self.quality) / len(self.quality) if self.quality else 0.0

    @property
    def mean_lost(self) -> float:
        return sum(self.lost) / len(self.lost) if self.lost else 0.0

    @property
    def baseline(self) -> float:
        """The warm-up's best-answer rate (everybody honest)."""
        return sum(self.warmup_wins) / len(self.warmup_wins) if self.warmup_wins else 1.0

    def recovery(self, window: int) -> int | None:
        """Sessions after the attack started until, for good, the best-answer rate over the
        last ``window`` sessions is within 5 points of what the honest verifiers alone achieved
        on those same sessions (0: it never fell behind; ``None``: behind at the end)."""
        window = max(1, min(window, len(self.wins)))
        last_below = -1  # the last session whose trailing window was behind
        ours = honest = 0
        for i, (win, ref) in enumerate(zip(self.wins, self.reference, strict=True)):
            ours += win
            honest += ref
            if i >= window:
                ours -= self.wins[i - window]
                honest -= self.reference[i - window]
            if (honest - ours) / min(i + 1, window) > _RECOVERY_MARGIN:
                last_below = i
        if last_below == len(self.wins) - 1:
            return None
        return last_below + 1


@dataclass(slots=True)
class ScenarioResult:
    scenario: Scenario
    outcomes: dict[str, Outcome]
    adversary_seats: float  # share of verifier seats adversaries held during the attack
    adversary_weight: float  # ... and share of the robust tally's verifier weight
    messages: int
    sessions: int
    rejected: int = 0  # messages a machine refused (0 in a healthy run)

    def recovery_window(self) -> int:
        return max(20, min(100, len(self.outcomes["robust"].wins) // 6))


def _winner_stats(run: SessionRun, winner: bytes | None) -> tuple[bool, float, float]:
    """Whether the winner is (one of) the best answers, the quality lost, the quality won."""
    best = max(run.quality.values())
    got = run.quality.get(winner, 0.0) if winner is not None else 0.0
    return got >= best, round(best - got, 4), got


def run_scenario(config: SimConfig, scenario: Scenario) -> ScenarioResult:
    """Run the warm-up and the attack of one scenario; deterministic for a given config."""
    # the population and its draws depend on who attacks, not on how roles are drawn, so a
    # scenario and its uniform-roles twin compare the same peers
    s = scenario
    rng = random.Random(f"{config.seed}/{s.behaviour.value}/{s.fraction}/{s.waves}x{s.wave_size}")
    world = World(random.Random(rng.random()), noise=config.noise)
    net = SimNetwork(world, random.Random(rng.random()))
    me = peer_id_from_public_key(rng.randbytes(32))
    ledger = Ledger(me=me)
    bad = round(config.population * scenario.fraction)
    honest: list[SimPeer] = make_peers(rng, config.population - bad, Behaviour.HONEST, (0.3, 0.9))
    adversaries = make_peers(rng, bad, scenario.behaviour, (0.3, 0.9))
    pool: list[SimPeer] = honest + adversaries
    world.add(pool)
    outcomes = {row: Outcome() for row in AGGREGATOR_ROWS}
    seats = held = 0
    weight_bad = weight_all = 0.0
    messages = rejected = 0
    wave_every = max(1, config.sessions // (scenario.waves + 1)) if scenario.waves else 0
    total = config.warmup + config.sessions
    for index in range(total):
        attacking = index >= config.warmup
        world.attacking = attacking
        since = index - config.warmup
        if (
            attacking
            and wave_every
            and since % wave_every == 0
            and since // wave_every < scenario.waves
        ):
            wave = make_peers(rng, scenario.wave_size, Behaviour.COLLUDING, (0.3, 0.9))
            world.add(wave)
            pool += wave
        joiners = [p.peer for p in rng.sample(pool, config.joiners)]
        now = net.now_ms
        selection = ledger.selection_weights(joiners, now) if scenario.selection else None
        weights = ledger.verifier_weights(joiners, now)
        run = net.run_session(
            f"s{index}",
            me,
            joiners,
            executors=config.executors,
            aggregator="robust",
            selection=selection,
            weights=weights,
            canary_rate=config.canary_rate,
        )
        messages += run.messages
        rejected += run.rejected
        if run.result is None or not run.quality:
            raise RuntimeError(f"simulated session s{index} ended without a result")
        if (
            run.result.winner
            != tally(
                run.executors,
                run.verifiers,
                {
                    e: {v: x for v, x in r.items() if x is not None}
                    for e, r in run.result.scores.items()
                },
                responded=list(run.quality),
                aggregator="robust",
                weights=weights,
            ).winner
        ):
            raise AssertionError(f"s{index}: the leader's winner differs from the recomputed one")
        matrix = {
            ex: {v: s for v, s in row.items() if s is not None}
            for ex, row in run.result.scores.items()
        }
        for row in AGGREGATOR_ROWS:
            method = "robust" if row.startswith("robust") else row
            t = tally(
                run.executors,
                run.verifiers,
                matrix,
                responded=list(run.quality),
                aggregator=method,
                weights=weights if row == "robust" else None,
            )
            win, lost, got = _winner_stats(run, t.winner)
            outcome = outcomes[row]
            if attacking:
                outcome.wins.append(win)
                outcome.lost.append(lost)
                outcome.quality.append(got)
            else:
                outcome.warmup_wins.append(win)
        honest_panel = [v for v in run.verifiers if not world.peers[v].adversarial]
        reference = tally(
            run.executors, honest_panel, matrix, responded=list(run.quality), aggregator="robust"
        )
        reference_win = _winner_stats(run, reference.winner)[0] if honest_panel else False
        if attacking:
            for outcome in outcomes.values():
                outcome.reference.append(reference_win)
            bad_verifiers = [v for v in run.verifiers if world.peers[v].adversarial]
            seats += len(bad_verifiers)
            held += len(run.verifiers)
            weight_bad += sum(weights[v] for v in bad_verifiers)
            weight_all += sum(weights[v] for v in run.verifiers)
        ledger.record(Transcript.from_result(run.task, me, run.result, net.now_ms, run.canaries))
        net.now_ms += _SESSION_GAP_MS
    return ScenarioResult(
        scenario=scenario,
        outcomes=outcomes,
        adversary_seats=seats / held if held else 0.0,
        adversary_weight=weight_bad / weight_all if weight_all else 0.0,
        messages=messages,
        sessions=total,
        rejected=rejected,
    )


def fractions_grid(step: int = 10, top: int = 50) -> Sequence[float]:
    return [p / 100 for p in range(0, top + 1, step)]
