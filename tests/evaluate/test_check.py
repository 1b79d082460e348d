"""Answer checkers: final-answer extraction and normalisation, per checker."""

from __future__ import annotations

import pytest

from node.evaluate.check import canonical, check, checker_for, final_answer, number_in


@pytest.mark.parametrize(
    ("reply", "answer"),
    [
        ("Answer: 2500", "2500"),
        ("Answer: 2,500 metres", "2500"),
        ("The distance is 2 km.\nAnswer: 2500.0", "2500"),
        ("Answer: $12.50", "12.5"),
        ("answer = 7/2", "3.5"),
        ("First 3 packs of 6 make 18, plus 23 is 41, minus 8.\nAnswer: 33 stickers", "33"),
        ("18 + 23 = 41; 41 - 8 = 33", "33"),  # no marker: the last number
        ("The answer is 1.05 kg.", "1.05"),
        ("#### 72", "72"),
        ("so \\boxed{144}", "144"),
        ("[simulated sim/honest@p1] Answer: 9", "9"),
        ("Answer: -4", "-4"),
        ("Answer: 1 250", "1250"),
        ("Answer: 50%", "50"),
    ],
)
def test_numbers_are_compared_by_value(reply: str, answer: str) -> None:
    assert check("number", answer, reply).correct, (reply, answer)


@pytest.mark.parametrize(
    ("reply", "answer"),
    [
        ("Answer: 2600", "2500"),
        ("I started with 2500 but then: Answer: 250", "2500"),  # the marked answer counts
        ("no idea", "3"),
        ("", "3"),
        ("Answer: 33.5", "33"),
    ],
)
def test_wrong_or_missing_numbers_fail(reply: str, answer: str) -> None:
    assert not check("number", answer, reply).correct


@pytest.mark.parametrize(
    ("reply", "letter"),
    [
        ("Answer: B", "B"),
        ("Answer: (c)", "C"),
        ("Answer: B) Emma", "B"),
        ("Since Emma is between them, the shortest is Chloe.\nAnswer: C", "C"),
        ("I pick option a.", "A"),
        ("C", "C"),
    ],
)
def test_choice_letters(reply: str, letter: str) -> None:
    assert canonical("choice", reply) == letter
    assert check("choice", letter, reply).correct
    assert not check("choice", "A" if letter != "A" else "B", reply).correct


def test_exact_and_regex() -> None:
    assert check("exact", "Paris", "Answer: paris.").correct
    assert not check("exact", "Paris", "Answer: Paris, France").correct
    assert check("regex", r"^paris\b", "Answer: Paris, France").correct
    assert not check("regex", r"^lyon", "Answer: Paris").correct


def test_checker_inferred_from_kind_or_answer() -> None:
    assert checker_for("arithmetic", "x") == "number"
    assert checker_for("logic", "B") == "choice"
    assert checker_for("gsm8k", "42") == "number"
    assert checker_for("", "1,250") == "number"
    assert checker_for("trivia", "C") == "choice"
    assert checker_for("trivia", "Canberra") == "exact"
    with pytest.raises(ValueError, match="unknown checker"):
        check("fuzzy", "a", "a")


def test_final_answer_takes_the_last_marker() -> None:
    assert final_answer("Answer: 3\nwait, no.\nAnswer: 4") == ("4", True)
    assert final_answer("just text") == ("just text", False)
    assert number_in("nothing numeric") is None
    # canonical forms agree across spellings (what the majority vote counts)
    assert {canonical("number", t) for t in ("Answer: 1,500", "Answer: 1500.0 g")} == {"1500"}
