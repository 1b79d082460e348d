"""The simulated model on evaluation questions: right with probability p, wrong in plausible
ways, judges right with probability q; deterministic per (seed, node, question); labelled."""

from __future__ import annotations

import argparse

import pytest

from node.evaluate.check import canonical, check
from node.evaluate.questions import resolve
from node.evaluate.runner import prompt_for
from node.evaluate.templates import solve
from node.slm.base import SLMError
from node.slm.config import add_backend_flags, backend_from_args
from node.slm.sim import SimBackend, is_correct

QUESTIONS = resolve("all")


def rate(hits: list[bool]) -> float:
    return sum(hits) / len(hits)


@pytest.mark.parametrize("p", [0.3, 0.8])
async def test_answers_are_right_with_p_and_otherwise_a_plausible_slip(p: float) -> None:
    sims = [SimBackend(name=f"n{i}", seed=3, p=p) for i in range(4)]
    hits = []
    for q in QUESTIONS:
        prompt = prompt_for(q)
        slips = set(solve(prompt).wrong)
        for sim in sims:
            gen = await sim.generate(prompt)
            assert gen.text.startswith(f"[simulated sim/honest@{sim.name}] Answer: ")
            assert gen.simulated
            ok = check(q.checker, q.answer, gen.text).correct
            assert ok or canonical(q.checker, gen.text) in slips
            assert is_correct(prompt, gen.text) is ok
            hits.append(ok)
    assert rate(hits) == pytest.approx(p, abs=0.04)  # 720 draws: 4 standard errors


def test_deterministic_per_seed_node_and_question() -> None:
    prompt = prompt_for(QUESTIONS[0])
    a = SimBackend(name="a", seed=1, p=0.5)
    assert a.answer_text(prompt) == SimBackend(name="a", seed=1, p=0.5).answer_text(prompt)
    texts = {SimBackend(name="a", seed=s, p=0.5).answer_text(p_) for s in range(8)
             for p_ in [prompt_for(q) for q in QUESTIONS[:5]]}  # fmt: skip
    assert len(texts) > 5


@pytest.mark.parametrize(("profile", "q"), [("honest", 0.9), ("noisy", 0.65)])
async def test_judges_are_right_with_q(profile: str, q: float) -> None:
    judges = [SimBackend(name=f"j{i}", profile=profile, seed=2) for i in range(3)]
    assert judges[0].judge_q == q
    right = []
    for question in QUESTIONS:
        prompt = prompt_for(question)
        for reply in (f"Answer: {question.answer}", f"Answer: {solve(prompt).wrong[0]}"):
            truth = check(question.checker, question.answer, reply).correct
            for judge in judges:
                j = await judge.judge(prompt, reply)
                assert j.score in (0.85, 0.15) and j.simulated
                right.append((j.score > 0.5) == truth)
                # a judge grades the answer, not who gave it
                again = await judge.judge(prompt, f"[simulated sim/honest@zz] {reply}")
                assert again.score == j.score
    assert rate(right) == pytest.approx(q, abs=0.035)


async def test_lazy_adversarial_and_faulty_are_unchanged_on_eval_questions() -> None:
    prompt = prompt_for(QUESTIONS[0])
    lazy = SimBackend(name="l", profile="lazy")
    assert (await lazy.judge(prompt, "Answer: 1")).score == 0.5
    adv = SimBackend(name="x", profile="adversarial", friend="f")
    assert (await adv.judge(prompt, "[simulated sim/honest@f] Answer: 1")).score == 0.95
    faulty = SimBackend(name="y", profile="faulty")
    assert (await faulty.judge(prompt, f"Answer: {QUESTIONS[0].answer}")).score is None


def test_judge_q_is_configurable() -> None:
    parser = argparse.ArgumentParser()
    add_backend_flags(parser)
    args = parser.parse_args(["--backend", "sim", "--sim-p", "0.4", "--sim-judge-q", "0.55"])
    sim = backend_from_args(args, "n", environ={})
    assert (sim.p, sim.judge_q) == (0.4, 0.55)
    with pytest.raises(SystemExit):
        parser.parse_args(["--sim-judge-q", "1.5"])
    with pytest.raises(SLMError, match="judge q"):
        SimBackend(name="n", judge_q=-0.1)
