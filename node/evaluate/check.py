"""Answer checkers: is a model's (long) reply the reference answer?

A reply is reduced to its *final answer* first: the text after the last ``Answer:`` (the format
``rnet eval`` asks for), else after ``####`` (GSM8K's), else inside the last ``\\boxed{}``, else
after "the answer is"; with none of these the whole reply is the candidate and the checkers pick
the last number / the first option letter in it. Then, by checker:

* ``number`` -- numbers compared by value: thousands separators, currency signs, units and
  words around it, a trailing ``.0``, ``%``, fractions ``a/b`` are normalised away
  ("Answer: 2,500 metres" == "2500");
* ``choice`` -- a multiple-choice letter A-J ("(B)", "B)", "option b", "B. Paris");
* ``exact`` -- the same string after case, spacing, quotes and final punctuation are ignored;
* ``regex`` -- the reference answer is a pattern, searched case-insensitively in the final answer.

Each checker also gives a *canonical* form of a reply (``"2500"``, ``"B"``, ...), which is what a
majority vote counts: two replies agree when their canonical forms are equal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

CHECKERS = ("number", "choice", "exact", "regex")

# Kinds the shipped sets use, and a few common names of exported sets, mapped to their checker.
KIND_CHECKER: dict[str, str] = {
    "number": "number",
    "arithmetic": "number",
    "units": "number",
    "math": "number",
    "gsm8k": "number",
    "choice": "choice",
    "logic": "choice",
    "mcq": "choice",
    "exact": "exact",
    "regex": "regex",
}

_LABEL_RE = re.compile(r"^\[simulated [^\]]*\]\s*")
_ANSWER_RE = re.compile(r"\banswer\s*(?:is)?\s*[:=]\s*", re.IGNORECASE)
_THE_ANSWER_IS_RE = re.compile(r"\bthe (?:final )?answer is\s*", re.IGNORECASE)
_BOXED_RE = re.compile(r"\\boxed\{([^{}]*)\}")
# A number: optional sign, digits with optional thousands separators, optional decimals, or a
# fraction a/b. Separators: "," or a thin/normal space between groups of three.
_NUMBER_RE = re.compile(
    r"(?<![\w.])[-\u2212]?(?:\d{1,3}(?:[,\u2009\u202f ]\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?(?!\d)"
    r"|(?<![\w.])[-\u2212]?\.\d+"
)
_LETTER_RE = re.compile(r"^\(?([A-Ja-j])\)?(?:[.):\s]|$)")
_OPTION_RE = re.compile(r"\b(?:option|choice|letter)\s*\(?([A-Ja-j])\b", re.IGNORECASE)
_CAP_LETTER_RE = re.compile(r"(?<![\w'])\(?([A-J])\)?(?![\w'])")


@dataclass(frozen=True, slots=True)
class Check:
    """One checked reply: ``correct``, and the ``canonical`` answer found in it (None: none)."""

    correct: bool
    canonical: str | None


def checker_for(kind: str, answer: str) -> str:
    """The checker a question of ``kind`` uses. An unknown kind is inferred from the reference
    answer: a number -> ``number``, a single letter -> ``choice``, else ``exact``."""
    known = KIND_CHECKER.get(kind.strip().lower())
    if known:
        return known
    if parse_number(answer) is not None and _NUMBER_RE.fullmatch(answer.strip().replace("$", "")):
        return "number"
    if re.fullmatch(r"\(?[A-Ja-j]\)?", answer.strip()):
        return "choice"
    return "exact"


def final_answer(text: str) -> tuple[str, bool]:
    """The final-answer part of a reply and whether an explicit marker delimited it."""
    body = _LABEL_RE.sub("", text or "", count=1).strip()
    marks = list(_ANSWER_RE.finditer(body))
    if marks:
        return _first_line(body[marks[-1].end() :]), True
    if "####" in body:
        return _first_line(body.rsplit("####", 1)[1]), True
    boxed = _BOXED_RE.findall(body)
    if boxed:
        return boxed[-1].strip(), True
    marks = list(_THE_ANSWER_IS_RE.finditer(body))
    if marks:
        return _first_line(body[marks[-1].end() :]), True
    return body, False


def _first_line(text: str) -> str:
    text = text.strip()
    return text.splitlines()[0].strip() if text else ""


def parse_number(text: str) -> Fraction | None:
    """The value of one number written as models write it ("1,250", "-3.50", "7/2", "12%")."""
    match = _NUMBER_RE.search(text or "")
    return None if match is None else _value(match.group(0))


def _value(token: str) -> Fraction | None:
    token = re.sub(r"[,\u2009\u202f ]", "", token).replace("\u2212", "-")
    try:
        if "/" in token:
            num, den = token.split("/", 1)
            return Fraction(Decimal(num)) / Fraction(Decimal(den)) if Decimal(den) else None
        return Fraction(Decimal(token))
    except (InvalidOperation, ValueError, ZeroDivisionError):
        return None


def number_in(text: str) -> Fraction | None:
    """The number a reply gives: the first in its final answer, else the last in the reply."""
    part, marked = final_answer(text)
    tokens = _NUMBER_RE.findall(part.replace("$", "").replace("€", "").replace("£", ""))
    if not tokens:
        return None
    return _value(tokens[0] if marked else tokens[-1])


def format_number(value: Fraction) -> str:
    """Canonical text of a number: an integer without ``.0``, else the shortest decimal."""
    if value.denominator == 1:
        return str(value.numerator)
    as_decimal = Decimal(value.numerator) / Decimal(value.denominator)
    text = format(as_decimal.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def letter_in(text: str) -> str | None:
    """The option letter a reply picks."""
    part, marked = final_answer(text)
    stripped = part.strip().strip("*_`'\"")
    match = _LETTER_RE.match(stripped)
    if match and (marked or len(stripped) <= 3):
        return match.group(1).upper()
    match = _OPTION_RE.search(part)
    if match:
        return match.group(1).upper()
    match = _CAP_LETTER_RE.search(part)
    return match.group(1) if match else None


def normalise_text(text: str) -> str:
    text = " ".join(text.split()).strip().strip("\"'`*_")
    return text.rstrip(".!?;:").strip().casefold()


def canonical(checker: str, text: str) -> str | None:
    """The comparable core of a reply for ``checker`` (what a majority vote counts)."""
    if checker == "number":
        value = number_in(text)
        return None if value is None else format_number(value)
    if checker == "choice":
        return letter_in(text)
    part, _ = final_answer(text)
    return normalise_text(part) or None


def check(checker: str, answer: str, reply: str) -> Check:
    """Check ``reply`` against the reference ``answer`` with ``checker``."""
    if checker not in CHECKERS:
        raise ValueError(f"unknown checker {checker!r} (use one of {', '.join(CHECKERS)})")
    got = canonical(checker, reply)
    if got is None:
        return Check(False, None)
    if checker == "number":
        want = parse_number(answer)
        return Check(want is not None and parse_number(got) == want, got)
    if checker == "choice":
        return Check(got == answer.strip().strip("()").upper(), got)
    if checker == "exact":
        return Check(got == normalise_text(answer), got)
    part, _ = final_answer(reply)
    return Check(re.search(answer, part, re.IGNORECASE) is not None, got)
