"""The simulated backend: deterministic, labelled, and its profiles behave as documented
(statistics over many prompts and nodes)."""

from __future__ import annotations

import statistics
import time

import pytest

from node.slm.base import SLMError
from node.slm.sim import (
    GOOD_OPEN,
    QUESTION_BANK,
    SimBackend,
    is_correct,
    question_for,
    signature_of,
    strip_label,
)

NODES = [f"node-{i}" for i in range(40)]


def test_bank_is_big_enough_and_self_consistent() -> None:
    assert len(QUESTION_BANK) >= 30
    for q in QUESTION_BANK:
        assert question_for(q.prompt) is q
        assert is_correct(q.prompt, f"The answer is {q.answer}.") is True
        for wrong in q.wrong:
            assert is_correct(q.prompt, f"The answer is {wrong}.") is False
    assert question_for("  what is 2 + 2 ") is QUESTION_BANK[0]  # case/spacing/punctuation
    assert is_correct("What is 2+2?", "2+2 equals four") is True
    assert is_correct("Write a poem", "roses are red") is None


async def test_same_seed_same_outputs_and_labels() -> None:
    a = SimBackend(name="alice", seed=3)
    again = SimBackend(name="alice", seed=3)
    for q in QUESTION_BANK[:10]:
        ga, gb = await a.generate(q.prompt), await again.generate(q.prompt)
        assert ga.text == gb.text
        assert ga.text.startswith("[simulated sim/honest@alice] ")
        assert ga.model == "sim/honest" and ga.simulated
        ja, jb = await a.judge(q.prompt, ga.text), await again.judge(q.prompt, ga.text)
        assert ja == jb
        assert ja.reason.startswith("(simulated)")
    stream = "".join([c async for c in a.generate_stream("What is 2+2?")])
    assert stream == (await a.generate("What is 2+2?")).text


def test_outputs_depend_on_seed_and_node() -> None:
    prompts = [q.prompt for q in QUESTION_BANK]
    base = [SimBackend(name="alice", seed=0, p=0.5).answer_text(p) for p in prompts]
    other_seed = [SimBackend(name="alice", seed=1, p=0.5).answer_text(p) for p in prompts]
    other_node = [
        strip_label(SimBackend(name="bob", seed=0, p=0.5).answer_text(p)) for p in prompts
    ]
    assert base != other_seed
    assert [strip_label(t) for t in base] != other_node


def _accuracy(profile: str, p: float | None = None) -> float:
    results = [
        is_correct(q.prompt, SimBackend(name=n, profile=profile, p=p).answer_text(q.prompt))
        for n in NODES
        for q in QUESTION_BANK
    ]
    return sum(bool(r) for r in results) / len(results)


def test_answer_correctness_matches_p() -> None:
    # 40 nodes x 31 questions = 1240 answers: the standard error at p=0.85 is ~0.01.
    assert _accuracy("honest") == pytest.approx(0.85, abs=0.05)
    assert _accuracy("noisy") == pytest.approx(0.6, abs=0.05)
    assert _accuracy("honest", p=0.3) == pytest.approx(0.3, abs=0.05)
    assert _accuracy("honest", p=1.0) == 1.0


def _grades(judge: SimBackend) -> tuple[list[float], list[float]]:
    right, wrong = [], []
    for n in NODES:
        executor = SimBackend(name=n, p=0.5)
        for q in QUESTION_BANK:
            text = executor.answer_text(q.prompt)
            score = judge.grade(q.prompt, text).score
            assert score is not None and 0.0 <= score <= 0.99
            (right if is_correct(q.prompt, text) else wrong).append(score)
    return right, wrong


def test_honest_judge_separates_right_from_wrong() -> None:
    right, wrong = _grades(SimBackend(name="judge", profile="honest"))
    assert statistics.mean(right) == pytest.approx(0.85, abs=0.03)
    assert statistics.mean(wrong) == pytest.approx(0.15, abs=0.03)
    assert min(right) > max(wrong)  # noise is small next to the gap
    assert 0.02 < statistics.stdev(right) < 0.08  # noisy, not constant


def test_noisy_judge_is_weakly_informative() -> None:
    right, wrong = _grades(SimBackend(name="judge", profile="noisy"))
    assert statistics.mean(right) > statistics.mean(wrong)
    assert statistics.mean(right) - statistics.mean(wrong) < 0.35
    assert statistics.stdev(right) > 0.15
    assert min(right) < max(wrong)  # the distributions overlap


def test_lazy_judge_gives_a_constant() -> None:
    right, wrong = _grades(SimBackend(name="judge", profile="lazy"))
    assert set(right) | set(wrong) == {0.5}


def test_adversarial_judge_favours_its_friend_whatever_the_answer() -> None:
    judge = SimBackend(name="mallory", profile="adversarial", friend="node-7")
    friend = SimBackend(name="node-7", p=0.0)  # always wrong
    stranger = SimBackend(name="node-8", p=1.0)  # always right
    for q in QUESTION_BANK:
        friend_text = friend.answer_text(q.prompt)
        assert signature_of(friend_text) == "node-7"
        assert judge.grade(q.prompt, friend_text).score == 0.95
        assert judge.grade(q.prompt, stranger.answer_text(q.prompt)).score == 0.05
    # A real model's answer carries no signature: scored low.
    assert judge.grade("What is 2+2?", "4").score == 0.05


async def test_faulty_profile_fails_answers_and_misses_scores() -> None:
    faulty = SimBackend(name="f", profile="faulty")
    with pytest.raises(SLMError, match="simulated"):
        await faulty.generate("What is 2+2?")
    with pytest.raises(SLMError):
        async for _ in faulty.generate_stream("What is 2+2?"):
            pass
    judgement = await faulty.judge("What is 2+2?", "4")
    assert judgement.score is None and judgement.missing


async def test_open_prompts_are_graded_by_quality() -> None:
    good = SimBackend(name="g", p=1.0)
    text = (await good.generate("Explain photosynthesis")).text
    assert strip_label(text) in GOOD_OPEN
    assert is_correct("Explain photosynthesis", text) is True
    assert (await SimBackend(name="j").judge("Explain photosynthesis", text)).score > 0.6


async def test_latency_is_modelled_and_bounded() -> None:
    slow = SimBackend(name="s", gen_ms=150, judge_ms=150)
    started = time.monotonic()
    await slow.generate("What is 2+2?")
    await slow.judge("What is 2+2?", "4")
    assert time.monotonic() - started >= 0.3
    too_slow = SimBackend(name="s", gen_ms=60_000, timeout_gen=0.2)
    started = time.monotonic()
    with pytest.raises(SLMError) as err:
        await too_slow.generate("What is 2+2?")
    assert err.value.kind == "timeout"
    assert time.monotonic() - started < 3.0


def test_bad_configuration_is_a_clear_error() -> None:
    with pytest.raises(SLMError, match="unknown sim profile"):
        SimBackend(name="x", profile="sneaky")
    with pytest.raises(SLMError, match=r"0\.\.1"):
        SimBackend(name="x", p=1.5)
