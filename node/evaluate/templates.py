"""The question generators: seeded templates for multi-step arithmetic word problems, unit
conversions and simple logic, each with its reference answer and the *plausible* wrong answers a
small model gives (a step left out, a wrong operation, a unit slip, an off-by-one, the wrong
option).

A template is a sentence with ``{fields}``, a ``make`` that draws the fields from a seeded RNG,
a ``solve`` that computes the answer from the fields, and ``slips`` that computes the wrong
answers. Because every question is the template's text with the fields filled in, a question can
be *read back*: :func:`solve` matches the templates against any text (a prompt that wraps the
question, say) and recomputes answer and slips. That is how the simulated model knows the answer
to every generated question, whatever seed made it, without a lookup table.

``python -m node.evaluate.templates`` rewrites the shipped sets (same seeds -> same files).
"""

from __future__ import annotations

import random
import re
import string
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from node.evaluate.check import format_number
from node.evaluate.questions import SETS_DIR, Question, dump

_FORMATTER = string.Formatter()

Fields = dict[str, str]
Value = int | Fraction | str

NAMES = ("Ana", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jamal", "Kira")
NAMES += ("Leo", "Mina", "Nils", "Omar", "Priya", "Rosa", "Sami", "Tara", "Yusuf")
THINGS = ("apples", "marbles", "stickers", "cards", "pencils", "shells", "stamps", "coins")
ITEMS = (("notebook", "notebooks"), ("sandwich", "sandwiches"), ("ticket", "tickets"))
ITEMS += (("mug", "mugs"), ("poster", "posters"))
NONSENSE = ("bloops", "razzies", "lazzies", "wumps", "fizzles", "glorks", "tovs", "snibs", "drabs")
OBJECTS = ("grass", "road", "roof", "bench", "car", "tent")
LETTERS = "ABC"


@dataclass(frozen=True)
class Template:
    kind: str
    name: str
    text: str
    make: Callable[[random.Random], dict[str, Value]]
    solve: Callable[[Fields], Value]
    slips: Callable[[Fields], list[Value]]
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        numeric = {k for k, v in self.make(random.Random(0)).items() if not isinstance(v, str)}
        object.__setattr__(self, "pattern", _pattern(self.text, numeric))

    def render(self, values: dict[str, Value]) -> str:
        return self.text.format(**{k: _text(v) for k, v in values.items()})


def _text(value: Value) -> str:
    return value if isinstance(value, str) else format_number(Fraction(value))


def _pattern(text: str, numeric: set[str]) -> re.Pattern[str]:
    """The template as a regex: literals escaped (any run of spaces matches any run of
    whitespace), a field a named group, a repeated field a back-reference."""
    out, seen = [], set()
    for literal, name, _, _ in _FORMATTER.parse(text):
        out.append(r"\s+".join(re.escape(part) for part in literal.split(" ")))
        if name is None:
            continue
        if name in seen:
            out.append(f"(?P={name})")
        else:
            seen.add(name)
            value = r"\d+(?:\.\d+)?" if name in numeric else r"[A-Za-z]+"
            out.append(f"(?P<{name}>{value})")
    return re.compile("".join(out))


def _n(fields: Fields, key: str) -> Fraction:
    return Fraction(fields[key])


def _option_letter(fields: Fields, answer: str) -> str:
    for letter in LETTERS:
        if fields[f"o{letter}"] == answer:
            return letter
    raise ValueError("answer is not among the options")


def _other_letters(fields: Fields, answer: str) -> list[Value]:
    right = _option_letter(fields, answer)
    return [letter for letter in LETTERS if letter != right]


# -- arithmetic ---------------------------------------------------------------------------------


def _make_packs(rng: random.Random) -> dict[str, Value]:
    a, b, c = rng.randint(5, 40), rng.randint(2, 6), rng.randint(3, 12)
    return {"name": rng.choice(NAMES), "a": a, "b": b, "c": c, "d": rng.randint(2, a + b * c - 1),
            "things": rng.choice(THINGS)}  # fmt: skip


def _make_change(rng: random.Random) -> dict[str, Value]:
    item, items = rng.choice(ITEMS)
    p, n, q = rng.randint(2, 9), rng.randint(2, 5), rng.randint(1, 4)
    bill = next(b for b in (20, 50, 100) if b > p * n + q)
    return {"item": item, "items": items, "p": p, "n": n, "q": q, "bill": bill,
            "name": rng.choice(NAMES)}  # fmt: skip


def _make_trip(rng: random.Random) -> dict[str, Value]:
    return {"v": rng.choice(range(40, 130, 10)), "t": rng.randint(2, 5),
            "w": rng.choice(range(30, 100, 10)), "u": rng.randint(2, 4)}  # fmt: skip


def _make_pages(rng: random.Random) -> dict[str, Value]:
    a, d, b = rng.choice(range(10, 45, 5)), rng.randint(3, 7), rng.randint(5, 30)
    return {"total": a * d + b + rng.randint(10, 150), "name": rng.choice(NAMES), "a": a,
            "d": d, "b": b}  # fmt: skip


def _make_chairs(rng: random.Random) -> dict[str, Value]:
    return {"r": rng.randint(4, 15), "c": rng.randint(6, 20), "k": rng.randint(2, 9),
            "g": rng.randint(3, 25)}  # fmt: skip


ARITHMETIC = (
    Template(
        "arithmetic",
        "packs",
        "{name} has {a} {things}. {name} buys {b} packs of {c} {things} each and then gives {d} "
        "{things} to a friend. How many {things} does {name} have now?",
        _make_packs,
        lambda f: _n(f, "a") + _n(f, "b") * _n(f, "c") - _n(f, "d"),
        lambda f: [
            _n(f, "a") + _n(f, "b") * _n(f, "c"),  # forgot the last step
            _n(f, "a") + _n(f, "b") + _n(f, "c") - _n(f, "d"),  # added instead of multiplied
            _n(f, "a") + _n(f, "b") * _n(f, "c") - _n(f, "d") + 1,  # off by one
        ],
    ),
    Template(
        "arithmetic",
        "change",
        "A {item} costs {p} dollars. {name} buys {n} {items} and a pen that costs {q} dollars, "
        "and pays with a {bill}-dollar bill. How much change does {name} get, in dollars?",
        _make_change,
        lambda f: _n(f, "bill") - _n(f, "p") * _n(f, "n") - _n(f, "q"),
        lambda f: [
            _n(f, "bill") - _n(f, "p") * _n(f, "n"),  # forgot the pen
            _n(f, "p") * _n(f, "n") + _n(f, "q"),  # the total, not the change
            _n(f, "bill") - _n(f, "p") - _n(f, "q"),  # one item only
        ],
    ),
    Template(
        "arithmetic",
        "trip",
        "A train travels at {v} km per hour for {t} hours, then at {w} km per hour for {u} more "
        "hours. How many kilometres does it travel in total?",
        _make_trip,
        lambda f: _n(f, "v") * _n(f, "t") + _n(f, "w") * _n(f, "u"),
        lambda f: [
            _n(f, "v") * _n(f, "t"),  # first leg only
            _n(f, "v") * _n(f, "t") + _n(f, "w"),  # second leg for one hour
            (_n(f, "v") + _n(f, "w")) * _n(f, "t"),  # both legs with the first duration
        ],
    ),
    Template(
        "arithmetic",
        "pages",
        "A book has {total} pages. {name} reads {a} pages a day for {d} days, then {b} pages on "
        "the next day. How many pages are left to read?",
        _make_pages,
        lambda f: _n(f, "total") - _n(f, "a") * _n(f, "d") - _n(f, "b"),
        lambda f: [
            _n(f, "total") - _n(f, "a") * _n(f, "d"),  # forgot the last day
            _n(f, "a") * _n(f, "d") + _n(f, "b"),  # pages read, not left
            _n(f, "total") - _n(f, "a") * (_n(f, "d") + 1) - _n(f, "b"),  # one day too many
        ],
    ),
    Template(
        "arithmetic",
        "chairs",
        "A hall has {r} rows of {c} chairs. {k} chairs are broken and removed, then {g} new "
        "chairs are brought in. How many chairs are in the hall now?",
        _make_chairs,
        lambda f: _n(f, "r") * _n(f, "c") - _n(f, "k") + _n(f, "g"),
        lambda f: [
            _n(f, "r") * _n(f, "c") + _n(f, "g"),  # forgot the broken ones
            _n(f, "r") * _n(f, "c") - _n(f, "k") - _n(f, "g"),  # wrong sign
            _n(f, "r") + _n(f, "c") - _n(f, "k") + _n(f, "g"),  # added rows and columns
        ],
    ),
)


# -- units --------------------------------------------------------------------------------------


def _amount(rng: random.Random) -> Fraction:
    """A whole or one-decimal amount (2, 3.5, 12...)."""
    whole = rng.randint(1, 20)
    return Fraction(whole) + (Fraction(rng.choice((1, 5)), 10) if rng.random() < 0.4 else 0)


def _factor(text: str, key: str, factor: int, slips: tuple[int, ...], kind: str = "units"):
    return Template(
        kind,
        key,
        text,
        lambda rng: {"x": _amount(rng)},
        lambda f: _n(f, "x") * factor,
        lambda f: [_n(f, "x") * s for s in slips],  # a unit slip: the wrong factor
    )


def _make_minutes(rng: random.Random) -> dict[str, Value]:
    return {"h": rng.randint(1, 9), "m": rng.randint(5, 55)}


def _make_flour(rng: random.Random) -> dict[str, Value]:
    return {"x": rng.choice(range(150, 500, 50)), "n": rng.randint(2, 8)}


UNITS = (
    _factor("How many metres are in {x} kilometres?", "km-m", 1000, (100, 10000, 10)),
    _factor("How many grams are in {x} kilograms?", "kg-g", 1000, (100, 10, 10000)),
    _factor("How many centimetres are in {x} metres?", "m-cm", 100, (1000, 10)),
    _factor("How many millilitres are in {x} litres?", "l-ml", 1000, (100, 10)),
    _factor("How many seconds are in {x} minutes?", "min-s", 60, (100, 3600)),
    Template(
        "units",
        "h-min",
        "How many minutes are in {h} hours and {m} minutes?",
        _make_minutes,
        lambda f: _n(f, "h") * 60 + _n(f, "m"),
        lambda f: [
            _n(f, "h") * 100 + _n(f, "m"),  # hours as hundreds
            _n(f, "h") * 60,  # forgot the minutes
            _n(f, "h") + _n(f, "m"),  # no conversion
        ],
    ),
    Template(
        "units",
        "flour",
        "A cake needs {x} grams of flour. How many kilograms of flour do {n} cakes need?",
        _make_flour,
        lambda f: _n(f, "x") * _n(f, "n") / 1000,
        lambda f: [
            _n(f, "x") * _n(f, "n"),  # grams, not kilograms
            _n(f, "x") * _n(f, "n") / 100,  # wrong factor
            _n(f, "x") / 1000,  # one cake
        ],
    ),
)


# -- logic (multiple choice) --------------------------------------------------------------------


def _make_order(rng: random.Random) -> dict[str, Value]:
    p, q, r = rng.sample(NAMES, 3)
    options = [p, q, r]
    rng.shuffle(options)
    return {"p": p, "q": q, "r": r, "which": rng.choice(("shortest", "tallest")),
            **{f"o{letter}": name for letter, name in zip(LETTERS, options, strict=True)}}  # fmt: skip


def _make_rain(rng: random.Random) -> dict[str, Value]:
    return {"thing": rng.choice(OBJECTS), "state": rng.choice(("dry", "wet"))}


def _make_syllogism(rng: random.Random) -> dict[str, Value]:
    x, y, z = rng.sample(NONSENSE, 3)
    return {"x": x, "y": y, "z": z, "quant": rng.choice(("All", "Some", "No"))}


LOGIC = (
    Template(
        "logic",
        "order",
        "{p} is taller than {q}. {q} is taller than {r}. Who is the {which}? "
        "A) {oA} B) {oB} C) {oC}",
        _make_order,
        lambda f: _option_letter(f, f["r"] if f["which"] == "shortest" else f["p"]),
        lambda f: _other_letters(f, f["r"] if f["which"] == "shortest" else f["p"]),
    ),
    Template(
        "logic",
        "rain",
        "If it rains, the {thing} gets wet. The {thing} is {state}. Did it rain? "
        "A) yes B) no C) cannot tell",
        _make_rain,
        lambda f: "B" if f["state"] == "dry" else "C",  # modus tollens / affirming the consequent
        lambda f: ["A", "C"] if f["state"] == "dry" else ["A", "B"],
    ),
    Template(
        "logic",
        "syllogism",
        "All {x} are {y}. {quant} {y} are {z}. Does it follow that all {x} are {z}? A) yes B) no",
        _make_syllogism,
        lambda f: "A" if f["quant"] == "All" else "B",
        lambda f: ["B"] if f["quant"] == "All" else ["A"],
    ),
)

TEMPLATES: dict[str, tuple[Template, ...]] = {"arithmetic": ARITHMETIC, "units": UNITS,
                                              "logic": LOGIC}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Solved:
    """A question read back from a text: its kind, answer and the plausible wrong answers."""

    kind: str
    template: str
    answer: str
    wrong: tuple[str, ...]


def solve(text: str) -> Solved | None:
    """The generated question ``text`` contains (anywhere in it), solved; ``None`` otherwise."""
    for templates in TEMPLATES.values():
        for template in templates:
            match = template.pattern.search(text)
            if match is None:
                continue
            fields = {k: v.strip() for k, v in match.groupdict().items()}
            try:
                answer = _text(template.solve(fields))
                wrong = [_text(v) for v in template.slips(fields)]
            except (ValueError, ZeroDivisionError, KeyError):
                continue
            # A slip that lands below zero is not plausible for these questions: dropped.
            distinct = tuple(dict.fromkeys(w for w in wrong if w != answer and w[0] != "-"))
            if not distinct:  # every question has at least one plausible wrong answer
                distinct = (
                    _text(Fraction(answer) + 1)
                    if template.kind != "logic"
                    else next(x for x in LETTERS if x != answer),
                )
            return Solved(template.kind, template.name, answer, distinct)
    return None


def generate(kind: str, count: int, seed: int) -> list[Question]:
    """``count`` distinct questions of ``kind`` (arithmetic, units, logic) drawn with ``seed``:
    templates in turn, fields from the RNG."""
    if kind not in TEMPLATES:
        raise ValueError(f"unknown kind {kind!r} (use one of {', '.join(TEMPLATES)})")
    if count < 1:
        raise ValueError("count must be at least 1")
    rng = random.Random(f"rnet-eval/{kind}/{seed}")
    templates = TEMPLATES[kind]
    seen: dict[str, Question] = {}
    for attempt in range(count * 50):
        template = templates[attempt % len(templates)]
        values = template.make(rng)
        text = template.render(values)
        if text in seen:
            continue
        answer = _text(template.solve({k: _text(v) for k, v in values.items()}))
        seen[text] = Question(text, answer, kind, {"template": template.name, "seed": seed})
        if len(seen) == count:
            break
    return list(seen.values())


# The shipped sets: (file stem, kind(s), count, seed). `smoke` is the 5-question set tests use.
SHIPPED = (("arithmetic", 60, 1), ("units", 60, 2), ("logic", 60, 3))


def write_shipped(directory: Path = SETS_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind, count, seed in SHIPPED:
        path = directory / f"{kind}.jsonl"
        path.write_text(dump(generate(kind, count, seed)), encoding="utf-8")
        paths.append(path)
    smoke = [q for kind, _, seed in SHIPPED for q in generate(kind, 2, seed + 100)][:5]
    (directory / "smoke.jsonl").write_text(dump(smoke), encoding="utf-8")
    return [*paths, directory / "smoke.jsonl"]


if __name__ == "__main__":
    for written in write_shipped(Path(sys.argv[1]) if len(sys.argv) > 1 else SETS_DIR):
        print(written)
