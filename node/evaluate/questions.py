"""Question sets: JSONL files, one ``{"question", "answer", "kind"}`` object per line.

``kind`` picks the checker (see :mod:`node.evaluate.check`); an unknown or missing kind is
inferred from the answer. Extra keys are kept as they are (``id``, ``source``...). The sets the
project ships live in ``node/evaluate/sets/`` and are named by their file stem (``arithmetic``,
``units``, ``logic``, ``smoke``); ``all`` is the three generated sets together.

Loading is strict about what it needs and says exactly where a file is wrong (line number and
what is missing); nothing is guessed from a malformed line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.evaluate.check import checker_for

SETS_DIR = Path(__file__).resolve().parent / "sets"
GENERATED_SETS = ("arithmetic", "units", "logic")
# A question or answer longer than this is almost certainly a wrong column, not a question.
MAX_QUESTION_CHARS = 8000
MAX_ANSWER_CHARS = 500


class QuestionsError(ValueError):
    """A question file cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Question:
    question: str
    answer: str
    kind: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def checker(self) -> str:
        return checker_for(self.kind, self.answer)

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "answer": self.answer, "kind": self.kind, **self.extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Question:
        return cls(
            question=str(data["question"]),
            answer=str(data["answer"]),
            kind=str(data.get("kind") or ""),
            extra={k: v for k, v in data.items() if k not in ("question", "answer", "kind")},
        )


def parse_line(line: str, where: str) -> Question:
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise QuestionsError(f"{where}: not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise QuestionsError(f"{where}: expected a JSON object, got {type(data).__name__}")
    question, answer = data.get("question"), data.get("answer")
    if not isinstance(question, str) or not question.strip():
        raise QuestionsError(f'{where}: "question" must be a non-empty string')
    if isinstance(answer, bool) or not isinstance(answer, str | int | float) or not str(answer):
        raise QuestionsError(f'{where}: "answer" must be a non-empty string or a number')
    if len(question) > MAX_QUESTION_CHARS or len(str(answer)) > MAX_ANSWER_CHARS:
        raise QuestionsError(f"{where}: question or answer is too long")
    kind = data.get("kind", "")
    if kind is not None and not isinstance(kind, str):
        raise QuestionsError(f'{where}: "kind" must be a string')
    q = Question.from_dict({**data, "answer": str(answer), "kind": kind or ""})
    if q.checker == "regex":
        try:
            re.compile(q.answer)
        except re.error as exc:
            raise QuestionsError(f"{where}: the answer is not a valid regex ({exc})") from None
    return q


def load(path: str | Path) -> list[Question]:
    """Every question of a JSONL file (blank lines skipped). Raises :class:`QuestionsError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QuestionsError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionsError(f"{path}: cannot be read ({exc})") from None
    questions = [
        parse_line(line, f"{path}:{number}")
        for number, line in enumerate(text.splitlines(), 1)
        if line.strip()
    ]
    if not questions:
        raise QuestionsError(f"{path}: no questions in it")
    return questions


def shipped_sets() -> list[str]:
    return sorted(p.stem for p in SETS_DIR.glob("*.jsonl"))


def resolve(name_or_path: str) -> list[Question]:
    """A shipped set by name (``arithmetic``, ``all``...) or any JSONL file by path."""
    if name_or_path == "all":
        return [q for name in GENERATED_SETS for q in load(SETS_DIR / f"{name}.jsonl")]
    shipped = SETS_DIR / f"{name_or_path}.jsonl"
    if "/" not in name_or_path and not name_or_path.endswith(".jsonl") and shipped.exists():
        return load(shipped)
    path = Path(name_or_path)
    if not path.exists() and not name_or_path.endswith(".jsonl"):
        names = ", ".join([*shipped_sets(), "all"])
        raise QuestionsError(f"{name_or_path}: neither a file nor a shipped set ({names})")
    return load(path)


def dump(questions: Iterable[Question]) -> str:
    """JSONL text of ``questions`` (one object per line, keys in a stable order)."""
    return "".join(json.dumps(q.to_dict(), ensure_ascii=False) + "\n" for q in questions)
