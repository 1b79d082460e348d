"""The simulated backend (``--backend sim``): a seeded stand-in for a model, for demos without
Ollama, for tests, and for robustness experiments with dishonest or broken nodes.

Deterministic: every answer is a function of (seed, node name, prompt), every grade of (seed, node
name, prompt, response). Nothing it produces can be mistaken for a real model: its model name is
``sim/<profile>`` and every answer starts with a label naming the profile and the node::

    [simulated sim/honest@alice] The answer is 4.

Correctness is measurable: :data:`QUESTION_BANK` holds short factual questions with known answers
(:func:`is_correct` grades any text, simulated or not). Prompts outside the bank get an "open"
answer drawn from a set of good or of poor phrasings, so the simulated judges can grade those too.

Profiles (``p`` = probability that an answer is correct):

=============  ======  =========================================================================
profile        p       judging
=============  ======  =========================================================================
honest         0.85    correct ~ N(0.85, 0.05), wrong ~ N(0.15, 0.05), unknown ~ N(0.50, 0.10)
noisy          0.60    correct ~ N(0.60, 0.25), wrong ~ N(0.40, 0.25), unknown ~ U(0, 0.99)
lazy           0.50    0.50 for everything
adversarial    0.85    0.95 for answers signed by ``friend``, 0.05 for all others
faulty         --      every answer fails (SLMError), every grading is missing (score None)
=============  ======  =========================================================================

Scores are clamped to [0.00, 0.99] and rounded to two decimals.

Evaluation questions (the kinds ``rnet eval`` generates: arithmetic, units, logic; see
:mod:`node.evaluate.templates`, which reads any such question back from the prompt): an answer is
``Answer: <value>``, right with probability ``p`` and otherwise one of the question's plausible
wrong answers (a step left out, a unit slip...), drawn uniformly. An honest or noisy judge grades
the *final answer* (so equal answers get equal grades) and is right about it with probability
``q`` (``--sim-judge-q``; default honest 0.9, noisy 0.65): 0.85 when it deems the answer right,
0.15 otherwise. Lazy, adversarial and faulty judges behave as in the table.

The friend hook: the judge interface carries no executor identity (a real judge must not know whose
answer it grades). The adversary needs one, so the simulation smuggles it through the answer text:
the ``@<node>`` in the label is that node's *name* (as given to ``backend_from_args``), and the
adversarial judge reads it back with :func:`signature_of`. Only simulated answers carry it, so an
adversary scores every real model's answer low.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import anyio

from node.evaluate.check import check as check_answer
from node.evaluate.check import checker_for
from node.evaluate.templates import Solved, solve
from node.slm.base import (
    SCORE_MAX,
    SCORE_MIN,
    SIM_LABEL_RE,
    Backend,
    Generation,
    GenParams,
    Judgement,
    SLMError,
    check_prompt,
    coerce_params,
    sim_label,
    strip_sim_label,
)
from node.slm.shaping import answer_as_asked, tool_call_correct

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Question:
    """A bank entry. ``accept`` and ``wrong`` are phrases (matched on whole words)."""

    prompt: str
    answer: str
    accept: tuple[str, ...]
    wrong: tuple[str, ...]


def _q(prompt: str, answer: str, wrong: tuple[str, ...], *also: str) -> Question:
    return Question(prompt, answer, (answer, *also), wrong)


QUESTION_BANK: tuple[Question, ...] = (
    _q("What is 2+2?", "4", ("5", "22", "3"), "four"),
    _q("What is the capital of France?", "Paris", ("Lyon", "Marseille", "Berlin")),
    _q("What is the capital of Japan?", "Tokyo", ("Kyoto", "Osaka")),
    _q("How many days are in a week?", "7", ("5", "6", "8"), "seven"),
    _q("What is the chemical symbol for gold?", "Au", ("Ag", "Gd", "Go")),
    _q("Which planet is known as the Red Planet?", "Mars", ("Jupiter", "Venus", "Mercury")),
    _q("What is 7 times 8?", "56", ("54", "58", "48"), "fifty six"),
    _q(
        "Who wrote Romeo and Juliet?",
        "William Shakespeare",
        ("Charles Dickens", "Christopher Marlowe"),
        "Shakespeare",
    ),
    _q(
        "What is the boiling point of water at sea level in degrees Celsius?",
        "100",
        ("90", "212", "80"),
    ),
    _q("How many continents are there?", "7", ("5", "6", "8"), "seven"),
    _q("What is the largest ocean on Earth?", "Pacific", ("Atlantic", "Indian", "Arctic")),
    _q(
        "What gas do plants absorb from the air for photosynthesis?",
        "carbon dioxide",
        ("oxygen", "nitrogen", "hydrogen"),
        "CO2",
    ),
    _q("What is the square root of 81?", "9", ("8", "7", "81"), "nine"),
    _q("In which year did World War II end?", "1945", ("1944", "1939", "1946")),
    _q("What is the capital of Italy?", "Rome", ("Milan", "Venice", "Naples")),
    _q("How many legs does a spider have?", "8", ("6", "10"), "eight"),
    _q("What is the freezing point of water in degrees Fahrenheit?", "32", ("0", "100", "16")),
    _q("What is the smallest prime number?", "2", ("1", "3", "0"), "two"),
    _q("Which element has the chemical symbol O?", "oxygen", ("gold", "osmium", "carbon")),
    _q("What is the capital of Canada?", "Ottawa", ("Toronto", "Montreal", "Vancouver")),
    _q("How many sides does a hexagon have?", "6", ("5", "8", "7"), "six"),
    _q("What is 15 minus 6?", "9", ("8", "11", "7"), "nine"),
    _q(
        "Who painted the Mona Lisa?",
        "Leonardo da Vinci",
        ("Michelangelo", "Raphael", "Rembrandt"),
        "da Vinci",
    ),
    _q(
        "What is the largest planet in the Solar System?", "Jupiter", ("Saturn", "Earth", "Neptune")
    ),
    _q("What is the capital of Australia?", "Canberra", ("Sydney", "Melbourne", "Perth")),
    _q("How many hours are in a day?", "24", ("12", "20", "48")),
    _q("What is the hardest natural substance?", "diamond", ("quartz", "steel", "granite")),
    _q("What language is mainly spoken in Brazil?", "Portuguese", ("Spanish", "French")),
    _q("What is 12 squared?", "144", ("124", "122", "24")),
    _q("How many minutes are in an hour?", "60", ("100", "30", "90"), "sixty"),
    _q("What is the capital of Germany?", "Berlin", ("Munich", "Bonn", "Hamburg")),
)

# Open prompts (outside the bank) get one of these; the simulated judges know which set it is from.
GOOD_OPEN = (
    "Here is a short, direct answer that addresses the question.",
    "A concise answer covering the main point of the question.",
    "A clear and accurate summary, kept brief.",
)
POOR_OPEN = (
    "I think it might be something else entirely, possibly unrelated.",
    "It is hard to say; maybe the opposite of what was asked.",
    "Some loosely related remarks that miss the question.",
)

PROFILE_P: dict[str, float] = {
    "honest": 0.85,
    "noisy": 0.6,
    "lazy": 0.5,
    "adversarial": 0.85,
    "faulty": 0.85,
}

# How often a judge is right about an evaluation answer (see the module doc).
PROFILE_Q: dict[str, float] = {"honest": 0.9, "noisy": 0.65}
EVAL_SCORE_RIGHT, EVAL_SCORE_WRONG = 0.85, 0.15

_WORD_RE = re.compile(r"[a-z0-9]+")


def _words(text: str) -> tuple[str, ...]:
    return tuple(_WORD_RE.findall(text.lower()))


def _key(prompt: str) -> tuple[str, ...]:
    return _words(prompt)


_BANK_INDEX: dict[tuple[str, ...], Question] = {}


def question_for(prompt: str) -> Question | None:
    """The bank question ``prompt`` asks (case, spacing and punctuation ignored), if any."""
    if not _BANK_INDEX:
        _BANK_INDEX.update({_key(q.prompt): q for q in QUESTION_BANK})
    return _BANK_INDEX.get(_key(prompt))


def _contains(words: tuple[str, ...], phrase: str) -> bool:
    needle = _words(phrase)
    n = len(needle)
    return n > 0 and any(words[i : i + n] == needle for i in range(len(words) - n + 1))


def strip_label(text: str) -> str:
    """The answer without the simulation label."""
    return strip_sim_label(text)


def signature_of(text: str) -> str | None:
    """The node name a simulated answer is signed with (see the module doc), else ``None``."""
    match = SIM_LABEL_RE.match(text)
    return match.group(2) if match else None


def is_correct(prompt: str, text: str) -> bool | None:
    """Whether ``text`` answers ``prompt`` correctly: ``None`` when unknown (neither a bank question
    nor a simulated open answer). A bank answer is correct when it contains an accepted phrase and
    none of the known wrong ones."""
    called = tool_call_correct(prompt, text)
    if called is not None:
        return called  # a tool call: right when it picked the tool the conversation needs
    body = strip_label(text)
    question = question_for(prompt)
    if question is None:
        solved = solve(prompt)
        if solved is not None:
            return _eval_correct(solved, body)
        if body in GOOD_OPEN:
            return True
        if body in POOR_OPEN:
            return False
        return None
    words = _words(body)
    if any(_contains(words, w) for w in question.wrong):
        return False
    return any(_contains(words, a) for a in question.accept)


def _eval_correct(solved: Solved, reply: str) -> bool:
    return check_answer(checker_for(solved.kind, solved.answer), solved.answer, reply).correct


def _rng(*parts: object) -> random.Random:
    # sha256, not hash(): Python salts str hashes per process and the simulation must replay.
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _clamp(score: float) -> float:
    return round(min(max(score, SCORE_MIN), SCORE_MAX), 2)


class SimBackend(Backend):
    """A simulated model with a behaviour profile; see the module doc."""

    backend = "sim"
    simulated = True
    # Simulated, labelled: JSON that fits the schema, plausible tool calls (see node.slm.shaping).
    capabilities = ("completion", "json", "tools")
    PROFILES: ClassVar[tuple[str, ...]] = tuple(PROFILE_P)

    def __init__(
        self,
        *,
        name: str,
        profile: str = "honest",
        seed: int = 0,
        p: float | None = None,
        gen_ms: float = 0.0,
        judge_ms: float = 0.0,
        friend: str | None = None,
        judge_q: float | None = None,
        timeout_gen: float = 120.0,
        timeout_judge: float = 60.0,
    ) -> None:
        if profile not in PROFILE_P:
            raise SLMError(
                f"unknown sim profile {profile!r}: use one of {', '.join(PROFILE_P)}",
                kind="config",
            )
        super().__init__(
            name=name, model=f"sim/{profile}", timeout_gen=timeout_gen, timeout_judge=timeout_judge
        )
        if p is not None and not 0.0 <= p <= 1.0:
            raise SLMError(f"sim p must be within 0..1, got {p!r}", kind="config")
        if judge_q is not None and not 0.0 <= judge_q <= 1.0:
            raise SLMError(f"sim judge q must be within 0..1, got {judge_q!r}", kind="config")
        if gen_ms < 0 or judge_ms < 0:
            raise SLMError("simulated latencies must be zero or more", kind="config")
        self.profile = profile
        self.seed = seed
        self.p = PROFILE_P[profile] if p is None else p
        self.gen_ms = gen_ms
        self.judge_ms = judge_ms
        self.friend = friend
        self.judge_q = PROFILE_Q.get(profile, 0.5) if judge_q is None else judge_q

    def describe(self) -> str:
        return f"sim {self.model} (simulated, seed {self.seed})"

    @property
    def label(self) -> str:
        return sim_label(self.model, self.name)

    async def check(self) -> None:
        log.info("simulated backend %s for %s (no model runs)", self.model, self.name)

    def answer_text(self, prompt: str) -> str:
        """The deterministic answer to ``prompt`` (label included), without latency."""
        rng = _rng(self.seed, self.name, "answer", prompt)
        correct = rng.random() < self.p
        question = question_for(prompt)
        solved = solve(prompt) if question is None else None
        if solved is not None:
            body = f"Answer: {solved.answer if correct else rng.choice(solved.wrong)}"
        elif question is None:
            body = rng.choice(GOOD_OPEN if correct else POOR_OPEN)
        else:
            body = f"The answer is {question.answer if correct else rng.choice(question.wrong)}."
        return f"{self.label} {body}"

    async def _model_time(self, ms: float, bound: float, what: str) -> None:
        if ms <= 0:
            return
        if ms / 1000 > bound:
            # Model time beyond the bound: behave as a real timeout would, after the bound.
            await anyio.sleep(bound)
            raise SLMError(
                f"simulated model {self.model} did not {what} within {bound:g}s", kind="timeout"
            )
        await anyio.sleep(ms / 1000)

    def _fail_if_faulty(self) -> None:
        if self.profile == "faulty":
            raise SLMError(f"simulated model {self.model} failed (faulty profile)")

    async def generate(
        self,
        prompt: str,
        params: GenParams | Mapping[str, Any] | None = None,
        *,
        format: str | Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] = (),
        tool_choice: str = "auto",
    ) -> Generation:
        check_prompt(prompt)
        options = coerce_params(params)  # same validation as the real backend
        started = time.perf_counter()
        await self._model_time(self.gen_ms, self.timeout_gen, "answer")
        self._fail_if_faulty()
        wall_ms = round((time.perf_counter() - started) * 1000, 1)
        timings = {"wall_ms": wall_ms, "sim_ms": self.gen_ms}
        rng, text = _rng(self.seed, self.name, "tool", prompt), self.answer_text(prompt)
        asked = (format, tools, tool_choice)
        out = answer_as_asked(prompt, text, self.label, options, asked, rng.random() < self.p, rng)
        return Generation(model=self.model, timings=timings, **out)

    async def generate_stream(
        self, prompt: str, params: GenParams | Mapping[str, Any] | None = None
    ) -> AsyncIterator[str]:
        check_prompt(prompt)
        coerce_params(params)
        self._fail_if_faulty()
        words = self.answer_text(prompt).split(" ")
        # Spread the model time over the chunks, as a real server streams tokens.
        per_chunk = self.gen_ms / len(words)
        if self.gen_ms / 1000 > self.timeout_gen:
            await self._model_time(self.gen_ms, self.timeout_gen, "answer")
        for i, word in enumerate(words):
            if per_chunk > 0:
                await anyio.sleep(per_chunk / 1000)
            yield word if i == 0 else " " + word

    def grade(self, prompt: str, response: str) -> Judgement:
        """The deterministic grade of ``response`` (no latency); see the profile table."""
        if self.profile == "faulty":
            return Judgement(None, "(simulated) judge failure: no score", self.model)
        rng = _rng(self.seed, self.name, "judge", prompt, response)
        correct = is_correct(prompt, response)
        if self.profile == "lazy":
            return Judgement(0.5, "(simulated) lazy judge: same score for everything", self.model)
        if self.profile == "adversarial":
            if self.friend is not None and signature_of(response) == self.friend:
                return Judgement(0.95, "(simulated) excellent answer", self.model)
            return Judgement(0.05, "(simulated) poor answer", self.model)
        solved = solve(prompt) if question_for(prompt) is None else None
        if solved is not None:
            return self._grade_eval(prompt, solved, response)
        if self.profile == "honest":
            mean, sd = {True: (0.85, 0.05), False: (0.15, 0.05), None: (0.5, 0.1)}[correct]
            score = _clamp(rng.gauss(mean, sd))
        else:  # noisy
            if correct is None:
                score = _clamp(rng.uniform(0.0, 0.99))
            else:
                score = _clamp(rng.gauss(0.6 if correct else 0.4, 0.25))
        reason = {True: "correct", False: "wrong", None: "cannot tell"}[correct]
        return Judgement(score, f"(simulated) {reason}", self.model)

    def _grade_eval(self, prompt: str, solved: Solved, response: str) -> Judgement:
        """An honest or noisy judge on an evaluation question: right about the final answer with
        probability ``judge_q``; the draw depends on that answer, not on who gave it."""
        checker = checker_for(solved.kind, solved.answer)
        verdict = check_answer(checker, solved.answer, strip_label(response))
        rng = _rng(self.seed, self.name, "judge-eval", prompt, verdict.canonical)
        deems_right = verdict.correct if rng.random() < self.judge_q else not verdict.correct
        score = EVAL_SCORE_RIGHT if deems_right else EVAL_SCORE_WRONG
        return Judgement(
            score, f"(simulated) deemed {'right' if deems_right else 'wrong'}", self.model
        )

    async def judge(self, prompt: str, response: str) -> Judgement:
        check_prompt(prompt)
        if not isinstance(response, str):
            raise SLMError(
                f"response must be text, got {type(response).__name__}", kind="bad_input"
            )
        await self._model_time(self.judge_ms, self.timeout_judge, "judge")
        return self.grade(prompt, response)
