"""The evaluation loop: each question to the swarm (and to a single model), every answer checked,
one record per question handed to a sink (the run store) as soon as it is complete.

Methods, per question:

* ``swarm`` -- the session's winner (what ``rnet pipe N`` prints);
* ``majority`` -- the most frequent final answer among the session's executors (ties drawn with
  the run's seed);
* ``executor`` -- every executor's own answer, pooled (what one of the swarm's models gets alone);
* ``single`` -- with ``--single MODEL``: that model asked directly through this node's backend;
  otherwise one of the session's executors, drawn with the run's seed (it was asked the same
  prompt, alone, so it *is* one provider asked directly; no extra model call).

Cost is counted in model calls and in tokens, estimated at 4 characters a token wherever the
model's own count does not travel (the wire carries text, not token counts); a judgement is
counted as its prompt (the question, the answer and the judge's instructions) plus a short reply.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from node.evaluate.check import check
from node.evaluate.ports import SingleAnswer, SingleModel, Swarm, SwarmOutcome
from node.evaluate.questions import Question
from node.evaluate.templates import solve

METHODS = ("swarm", "majority", "executor", "single")
INSTRUCTION = "Work it out, then give the final answer alone on the last line as: Answer: <{}>"
# What a judge prompt adds to the question and the answer (node.slm.judge's rubric), and its reply.
JUDGE_PROMPT_TOKENS = 160
JUDGE_REPLY_TOKENS = 40


def prompt_for(question: Question) -> str:
    """The prompt every model gets: the question and how to give the final answer."""
    what = {"number": "number", "choice": "letter"}.get(question.checker, "answer")
    return f"{question.question}\n\n{INSTRUCTION.format(what)}"


def tokens(text: str | None) -> int:
    return math.ceil(len(text or "") / 4)


@dataclass(frozen=True, slots=True)
class EvalSettings:
    """What a run was asked to do; stored with it, so ``--resume`` repeats it exactly."""

    source: str
    providers: int
    timeout_s: float = 60.0
    concurrency: int = 1
    seed: int = 0
    single: str | None = None  # a model asked directly; None: one of the executors
    sim: dict[str, Any] | None = None  # the sim flags the prediction assumes (--backend sim)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalSettings:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


def _checked(question: Question, text: str | None) -> dict[str, Any]:
    if not text:
        return {"text": text, "canonical": None, "correct": False}
    verdict = check(question.checker, question.answer, text)
    return {"text": text, "canonical": verdict.canonical, "correct": verdict.correct}


def score_question(
    idx: int,
    question: Question,
    outcome: SwarmOutcome,
    single: SingleAnswer | None,
    seed: int,
) -> dict[str, Any]:
    """The record of one question: every method's answer, checked, with latency and cost."""
    prompt = prompt_for(question)
    rng = random.Random(f"rnet-eval/{seed}/{idx}")
    executors = [
        {"peer": a.peer, "model": a.model, **_checked(question, a.text)} for a in outcome.answers
    ]
    answered = [e for e in executors if e["text"]]
    # majority vote over the canonical final answers
    votes = Counter(e["canonical"] for e in executors if e["canonical"] is not None)
    majority: dict[str, Any] = {"canonical": None, "correct": False, "votes": dict(votes)}
    if votes:
        top = max(votes.values())
        pick = rng.choice(sorted(k for k, n in votes.items() if n == top))
        majority["canonical"] = pick
        majority["correct"] = next(e["correct"] for e in executors if e["canonical"] == pick)
    timings = outcome.timings
    executed = timings.get("execute", timings.get("total", 0.0))
    if single is None:
        chosen = rng.choice(answered) if answered else None
        single_rec = {
            "source": "executor",
            "model": chosen["model"] if chosen else None,
            **_checked(question, chosen["text"] if chosen else None),
            "ms": executed,
            "error": None if chosen else "no executor answered",
        }
        single_cost = {"calls": 1, "tokens": tokens(prompt) + tokens(single_rec["text"])}
    else:
        single_rec = {
            "source": "direct",
            "model": single.model,
            **_checked(question, single.text),
            "ms": single.ms,
            "error": single.error,
        }
        out = single.tokens if single.tokens is not None else tokens(single.text)
        single_cost = {"calls": 1, "tokens": tokens(prompt) + out}
    gen_tokens = [tokens(prompt) + tokens(e["text"]) for e in answered]
    judge_tokens = sum(
        (tokens(prompt) + tokens(e["text"]) + JUDGE_PROMPT_TOKENS + JUDGE_REPLY_TOKENS)
        * outcome.verifiers
        for e in answered
    )
    solved = solve(question.question)
    swarm_text = outcome.text if outcome.winner else None
    return {
        "idx": idx,
        "question": question.question,
        "answer": question.answer,
        "kind": question.kind,
        "checker": question.checker,
        "swarm": {
            "task": outcome.task,
            "winner": outcome.winner,
            **_checked(question, swarm_text),
            "ms": timings.get("total", 0.0),
            "error": outcome.error,
        },
        "executors": executors,
        "majority": {**majority, "ms": timings.get("join", 0.0) + executed},
        "single": single_rec,
        "executor_ms": executed,
        "verifiers": outcome.verifiers,
        "cost": {
            "swarm": {
                "calls": len(executors) + len(answered) * outcome.verifiers,
                "tokens": sum(gen_tokens) + judge_tokens,
            },
            "majority": {"calls": len(executors), "tokens": sum(gen_tokens)},
            "executor": {
                "calls": 1,
                "tokens": round(sum(gen_tokens) / len(gen_tokens)) if gen_tokens else 0,
            },
            "single": single_cost,
        },
        # for the simulation's prediction: how many plausible wrong answers the question has
        "wrong_count": len(solved.wrong) if solved is not None else None,
    }


class SwarmMissing(RuntimeError):
    """The swarm is not there (too few providers): the run stops, ``--resume`` continues it."""


async def evaluate(
    questions: list[Question],
    settings: EvalSettings,
    swarm: Swarm,
    single: SingleModel | None,
    sink: Callable[[dict[str, Any]], None],
    done: Iterable[int] = (),
) -> int:
    """Ask every question not in ``done``, ``settings.concurrency`` at a time; hand each record
    to ``sink`` (in completion order). Returns how many were asked. Raises
    :class:`SwarmMissing` when the swarm lacks providers (records made so far are kept)."""
    todo = [i for i in range(len(questions)) if i not in set(done)]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in todo:
        queue.put_nowait(i)
    stop: list[str] = []

    async def worker() -> None:
        while not stop:
            try:
                idx = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            question = questions[idx]
            prompt = prompt_for(question)
            if single is not None:
                outcome, answer = await asyncio.gather(
                    swarm.ask(prompt, settings.providers, settings.timeout_s), single.ask(prompt)
                )
            else:
                outcome, answer = (
                    await swarm.ask(prompt, settings.providers, settings.timeout_s),
                    None,
                )
            if outcome.fatal:
                stop.append(outcome.error or "the swarm is not available")
                return
            sink(score_question(idx, question, outcome, answer, settings.seed))

    workers = max(1, min(settings.concurrency, len(todo) or 1))
    await asyncio.gather(*(worker() for _ in range(workers)))
    if stop:
        raise SwarmMissing(stop[0])
    return len(todo)
