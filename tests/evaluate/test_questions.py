"""Question sets: the JSONL format, the seeded generators, the shipped files, reading back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.evaluate.check import check
from node.evaluate.questions import (
    GENERATED_SETS,
    SETS_DIR,
    QuestionsError,
    dump,
    load,
    resolve,
)
from node.evaluate.templates import TEMPLATES, generate, solve, write_shipped


def test_generators_are_seeded_and_distinct() -> None:
    for kind in TEMPLATES:
        first = generate(kind, 40, seed=5)
        assert first == generate(kind, 40, seed=5)
        assert first != generate(kind, 40, seed=6)
        assert len({q.question for q in first}) == 40
        assert {q.kind for q in first} == {kind}
    with pytest.raises(ValueError, match="unknown kind"):
        generate("poetry", 3, 0)


def test_every_generated_question_reads_back_with_its_answer_and_slips() -> None:
    for kind in TEMPLATES:
        for q in generate(kind, 60, seed=11):
            wrapped = f"{q.question}\n\nWork it out, then ... Answer: <number>"
            solved = solve(wrapped)
            assert solved is not None and solved.kind == kind, q.question
            assert solved.answer == q.answer
            assert solved.wrong and q.answer not in solved.wrong
            assert check(q.checker, q.answer, f"Answer: {solved.answer}").correct
            for slip in solved.wrong:
                assert not check(q.checker, q.answer, f"Answer: {slip}").correct, (q, slip)
    assert solve("What is the capital of France?") is None


def test_shipped_sets_are_what_the_generator_writes(tmp_path: Path) -> None:
    write_shipped(tmp_path)
    for path in tmp_path.glob("*.jsonl"):
        assert path.read_text() == (SETS_DIR / path.name).read_text(), path.name
    assert len(resolve("all")) == sum(len(resolve(name)) for name in GENERATED_SETS) == 180
    assert len(resolve("smoke")) == 5


def test_any_file_in_the_format_loads(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    rows = [
        {"question": "Natalia sold 48 clips...", "answer": 72, "kind": "gsm8k", "id": 1},
        {"question": "Capital of Australia?", "answer": "Canberra"},
        {"question": "Pick one: A) x B) y", "answer": "B", "kind": "choice"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    qs = load(path)
    assert [q.checker for q in qs] == ["number", "exact", "choice"]
    assert qs[0].answer == "72" and qs[0].extra == {"id": 1}
    assert load(tmp_path / "mine.jsonl") == resolve(str(path))
    assert dump(qs).count("\n") == 3


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"answer": "4"}', '"question" must be'),
        ('{"question": "2+2?"}', '"answer" must be'),
        ('{"question": "2+2?", "answer": true}', '"answer" must be'),
        ('{"question": "q", "answer": "(", "kind": "regex"}', "not a valid regex"),
    ],
)
def test_bad_lines_are_named(tmp_path: Path, line: str, error: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "ok?", "answer": "1"}\n' + line + "\n")
    with pytest.raises(QuestionsError, match=f"bad.jsonl:2: .*{error}"):
        load(path)


def test_missing_sets_and_files_say_so(tmp_path: Path) -> None:
    with pytest.raises(QuestionsError, match="neither a file nor a shipped set"):
        resolve("nonsense")
    with pytest.raises(QuestionsError, match="no such file"):
        resolve(str(tmp_path / "absent.jsonl"))
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(QuestionsError, match="no questions"):
        load(tmp_path / "empty.jsonl")
