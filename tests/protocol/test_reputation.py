"""Reputation ledger: agreement, canaries, executors, prior, decay, bounds, leader weight."""

import pytest

from protocol.identity import peer_id_from_public_key
from protocol.reputation import Ledger, ReputationParams, Transcript
from tests.protocol.strategies import PEERS

ME = PEERS[0]
E1, E2, E3 = PEERS[1:4]
HONEST = PEERS[4:9]
LIAR = PEERS[9]
QUALITY = {E1: 0.8, E2: 0.4, E3: 0.1}
HOUR = 3_600_000


def _session(
    task: str,
    at_ms: int,
    liar_score=lambda q: 0.99 - q,
    leader: bytes = ME,
    canary: dict | None = None,
) -> Transcript:
    scores = {
        ex: {**{v: q for v in HONEST}, LIAR: round(liar_score(q), 2)} for ex, q in QUALITY.items()
    }
    return Transcript(task, leader, at_ms, scores, canary or {})


def test_new_identities_start_low_and_honest_judges_rise_above_a_liar() -> None:
    ledger = Ledger(me=ME)
    assert ledger.reputation(LIAR, 0) == 0.1 == ledger.verifier_weight(HONEST[0], 0)
    for i in range(10):
        ledger.record(_session(f"t{i}", i * 1000))
    now = 10_000
    honest = ledger.verifier_weight(HONEST[0], now)
    assert honest > 0.75
    assert ledger.verifier_weight(LIAR, now) < 0.05
    # executors: how their answers scored
    assert ledger.standing(E1, now).executor > ledger.standing(E2, now).executor > 0.1
    assert ledger.standing(E3, now).executor < 0.15
    assert ledger.standing(HONEST[0], now).sessions == 10
    assert [h.role for h in ledger.history(HONEST[0])] == ["verifier"] * 10


def test_a_transcript_counts_once() -> None:
    ledger = Ledger(me=ME)
    assert ledger.record(_session("t", 0))
    before = ledger.standing(HONEST[0], 0)
    assert ledger.record(_session("t", 0)) == {}
    assert ledger.standing(HONEST[0], 0) == before


def test_canaries_catch_a_judge_that_agrees_on_real_answers() -> None:
    lazy = PEERS[10]
    ledger = Ledger(me=ME)
    for i in range(6):
        t = _session(f"t{i}", i, liar_score=lambda q: q)
        canary = {"C": {**{v: 0.05 for v in HONEST}, lazy: 0.9, LIAR: 0.05}}
        ledger.record(Transcript(t.task, ME, i, {**t.scores}, canary))
        # lazy only scored the canary (high); LIAR agreed everywhere and scored the canary low
    assert ledger.verifier_weight(lazy, 10) < 0.1
    assert ledger.verifier_weight(LIAR, 10) > 0.8


def test_standing_decays_back_to_the_prior() -> None:
    params = ReputationParams(half_life_ms=HOUR)
    ledger = Ledger(params, me=ME)
    for i in range(10):
        ledger.record(_session(f"t{i}", i))
    fresh = ledger.verifier_weight(HONEST[0], 10)
    later = ledger.verifier_weight(HONEST[0], 10 + HOUR)
    much_later = ledger.verifier_weight(HONEST[0], 10 + 50 * HOUR)
    assert fresh > later > much_later
    assert much_later == pytest.approx(0.1, abs=0.001)


def test_sessions_led_by_strangers_count_by_the_leaders_reputation() -> None:
    stranger = PEERS[11]
    ours, theirs = Ledger(me=ME), Ledger(me=ME)
    for i in range(5):
        ours.record(_session(f"t{i}", i))
        theirs.record(_session(f"t{i}", i, leader=stranger))
    assert ours.verifier_weight(HONEST[0], 5) > 0.6
    assert theirs.verifier_weight(HONEST[0], 5) < 0.35  # a prior-0.1 leader vouches for little
    trusting = Ledger(me=ME, trusted=[stranger])
    assert trusting.reputation(stranger, 0) == 0.8


def test_a_thousand_fresh_keys_carry_little_weight_and_the_ledger_stays_bounded() -> None:
    ledger = Ledger(ReputationParams(max_peers=64), me=ME)
    for i in range(20):
        ledger.record(_session(f"t{i}", i))
    sybils = [peer_id_from_public_key(i.to_bytes(32, "big")) for i in range(1, 1001)]
    for j in range(0, 1000, 10):  # ten fresh keys per session, colluding beside honest judges
        batch = sybils[j : j + 10]
        scores = {
            E3: {**{v: 0.1 for v in HONEST}, **{s: 0.99 for s in batch}},
            E1: {**{v: 0.8 for v in HONEST}, **{s: 0.0 for s in batch}},
        }
        ledger.record(Transcript(f"s{j}", ME, 100 + j, scores))
    assert len(ledger) <= 64
    assert all(p in ledger for p in HONEST)  # established peers were not evicted
    weights = ledger.verifier_weights(sybils, 2000)
    honest = ledger.verifier_weights(HONEST, 2000)
    assert max(weights.values()) <= 0.1  # at the prior, or below it for those seen colluding
    assert min(honest.values()) > 3 * max(weights.values())


def test_params_are_checked() -> None:
    with pytest.raises(ValueError):
        ReputationParams(prior=1.5)
    with pytest.raises(ValueError):
        ReputationParams(half_life_ms=0)


def test_selection_follows_the_judging_record_only() -> None:
    ledger = Ledger(me=ME)
    for i in range(10):
        ledger.record(_session(f"t{i}", i))
    now = 10
    fresh = PEERS[11]
    assert ledger.selection_weight(fresh, now) == 0.1
    assert ledger.selection_weight(HONEST[0], now) > 7 * ledger.selection_weight(fresh, now)
    assert ledger.selection_weight(LIAR, now) < ledger.selection_weight(fresh, now)
    # answering well or badly neither earns nor costs a judging seat (no sandbagging for seats)
    assert ledger.selection_weight(E1, now) == ledger.selection_weight(E3, now) == 0.1


def test_a_ledger_learns_from_the_signed_envelopes_a_node_stored() -> None:
    from protocol.transcript import verify_transcript
    from tests.protocol.helpers import Swarm
    from tests.protocol.strategies import SIGNERS

    liar = SIGNERS[1].peer_id  # the first provider inverts every score it gives

    def score_of(ex: bytes, ver: bytes) -> float:
        honest = (ex[-1] % 90) / 100
        return round(0.99 - honest, 2) if ver == liar else honest

    for seed in range(20):  # a seed whose draw makes the liar a verifier
        swarm = Swarm(providers=7, auto_assign_at=7, canary_rate=1.0, score_of=score_of, seed=seed)
        swarm.run_to_end()
        if liar in swarm.leader.verifiers:
            break
    report = verify_transcript(swarm.stored[swarm.leader_id])
    assert report.ok, report.problems
    transcript = Transcript.from_audit(report, at_ms=1_000)
    assert transcript is not None and transcript.canaries  # canary_rate 1: every answer has one
    earned = Ledger(me=swarm.leader_id).record(transcript)

    def agreement(peer: bytes) -> float:
        return next(e.value for e in earned[peer] if e.role == "verifier")

    honest = [v for v in swarm.leader.verifiers if v != liar]
    assert min(agreement(v) for v in honest) > agreement(liar)
    assert all(e.role in ("verifier", "canary") for v in honest for e in earned[v])
    assert {e.role for e in earned[swarm.leader.executors[0]]} == {"executor"}
