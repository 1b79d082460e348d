"""Bodies: constructors validate, to_wire/from_wire round-trip, from_wire is strict."""

import math

import pytest
from hypothesis import given

from protocol.errors import MalformedError, OversizeError, ProtocolError, RangeError
from protocol.messages import (
    BODY_TYPES,
    MAX_NAME_CHARS,
    MAX_PROMPT_CHARS,
    MAX_REASON_CHARS,
    MAX_RESPONSE_CHARS,
    Advertise,
    Assign,
    Body,
    Item,
    Join,
    Presence,
    Response,
    Result,
    Reveal,
    Score,
    ScoreEntry,
    Scores,
    body_from_wire,
)
from protocol.wire import label_name
from tests.protocol.strategies import PEERS, bodies

A, B, C = PEERS[:3]


@given(bodies)
def test_every_kind_round_trips(body: Body) -> None:
    assert body_from_wire(body.KIND, body.to_wire()) == body


def test_every_kind_has_a_strategy_example() -> None:
    assert set(BODY_TYPES) == {
        "advertise", "join", "assign", "response", "item", "score", "scores",
        "reveal", "result", "abort", "presence", "bootmesh",
    }  # fmt: skip


@pytest.mark.parametrize("value", [1.0, 0.995, -0.01, math.nan, math.inf, -math.inf])
def test_score_out_of_range_rejected(value: float) -> None:
    with pytest.raises(RangeError) as info:
        Score(label="A", score=value)
    assert info.value.field == "score"
    assert info.value.reason == "out_of_range"


@pytest.mark.parametrize("value", ["0.5", None, True, b"\x00"])
def test_score_wrong_type_rejected(value: object) -> None:
    with pytest.raises(MalformedError) as info:
        Score(label="A", score=value)  # type: ignore[arg-type]
    assert info.value.reason == "bad_type"


def test_score_bounds_accepted() -> None:
    assert Score(label="A", score=0).score == 0.0
    assert Score(label="A", score=0.99).score == 0.99


def test_missing_and_unknown_fields_named() -> None:
    wire = Join(model="m", backend="sim").to_wire()
    with pytest.raises(MalformedError) as info:
        Join.from_wire({"model": "m"})
    assert (info.value.reason, info.value.field) == ("missing_field", "backend")
    with pytest.raises(MalformedError) as info:
        Join.from_wire({**wire, "extra": 1})
    assert (info.value.reason, info.value.field) == ("unknown_field", "extra")
    with pytest.raises(MalformedError):
        Join.from_wire([1, 2])


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Advertise(prompt="x" * (MAX_PROMPT_CHARS + 1)), "prompt"),
        (lambda: Response(text="x" * (MAX_RESPONSE_CHARS + 1), model="m"), "text"),
        (lambda: Score(label="A", score=0.5, reason="x" * (MAX_REASON_CHARS + 1)), "reason"),
        (lambda: Presence(name="n", status="x" * (MAX_NAME_CHARS + 1)), "status"),
    ],
)
def test_size_limits(make: object, field: str) -> None:
    with pytest.raises(OversizeError) as info:
        make()  # type: ignore[operator]
    assert info.value.field == field


def test_assign_roles_disjoint_and_non_empty() -> None:
    with pytest.raises(RangeError):
        Assign((A, B), (B, C), "p")
    with pytest.raises(RangeError):
        Assign((), (B,), "p")
    with pytest.raises(RangeError):
        Assign((A,), (), "p")
    with pytest.raises(RangeError):
        Assign((A, A), (B,), "p")
    with pytest.raises(RangeError):
        Assign((b"\x00" * 38,), (B,), "p")
    assert Assign([A], [B], "p").executors == (A,)  # lists normalised to tuples


def test_advertise_validates_deadlines_and_aggregator() -> None:
    with pytest.raises(RangeError):
        Advertise(prompt="p", join_ms=0)
    with pytest.raises(RangeError):
        Advertise(prompt="p", aggregator="max")
    with pytest.raises(RangeError):
        Advertise(prompt="   ")
    with pytest.raises(MalformedError):
        Advertise(prompt="p", wanted=True)  # bool is not an int here


def test_result_consistency() -> None:
    ok = dict(
        winner=A, score=0.5, text="t", aggregator="mean",
        averages={A: 0.5}, counts={A: 1}, scores={A: {B: 0.5}},
    )  # fmt: skip
    assert Result(**ok).verifiers == (B,)
    with pytest.raises(RangeError):
        Result(**{**ok, "winner": C})  # winner must be an executor
    with pytest.raises(RangeError):
        Result(**{**ok, "scores": {A: {A: 0.5}}})  # nobody scores itself
    with pytest.raises(RangeError):
        Result(**{**ok, "averages": {A: None}})  # a winner without scores
    with pytest.raises(RangeError):
        Result(**{**ok, "winner": None})  # score without winner
    with pytest.raises(RangeError):
        Result(**{**ok, "scores": {A: {B: 1.5}}})


def test_scores_batch_entries_validated_with_field_path() -> None:
    with pytest.raises(ProtocolError) as info:
        Scores.from_wire(
            {"entries": [{"label": "A", "score": 0.2, "reason": ""},
                         {"label": "B", "score": 2.0, "reason": ""}],
             "judge_model": "j", "failed": []}
        )  # fmt: skip
    assert info.value.field == "entries[1].score"
    with pytest.raises(RangeError):
        Scores.from_wire({"entries": [], "judge_model": "j", "failed": []})
    with pytest.raises(ProtocolError) as info:  # every field is on the wire, "failed" too
        Scores.from_wire({"entries": [], "judge_model": "j"})
    assert info.value.reason == "missing_field"


def test_scores_batch_may_report_only_failures_but_never_both_for_one_label() -> None:
    only = Scores.from_wire({"entries": [], "judge_model": "j", "failed": ["A"]})
    assert only.failed == ("A",) and only.entries == ()
    with pytest.raises(RangeError):
        Scores((ScoreEntry("A", 0.5),), "j", failed=("A",))
    with pytest.raises(RangeError):
        Scores((), "j", failed=("A", "A"))
    with pytest.raises(ProtocolError):
        Scores((), "j", failed=(A,))  # a peer ID is not a label


@pytest.mark.parametrize("label", ["", "a", "ABCD", "A1", "É", " A"])
def test_labels_are_one_to_three_capitals(label: str) -> None:
    with pytest.raises(RangeError):
        Score(label, 0.5)


def test_label_names_count_like_spreadsheet_columns() -> None:
    assert [label_name(i) for i in (0, 1, 25, 26, 27, 701, 702)] == [
        "A", "B", "Z", "AA", "AB", "ZZ", "AAA",
    ]  # fmt: skip


def test_item_and_reveal_validate() -> None:
    with pytest.raises(RangeError):
        Item("A", "t", b"short", 1)  # a digest has 32 bytes
    with pytest.raises(RangeError):
        Item("A", "t", b"\x00" * 32, 0)
    with pytest.raises(RangeError):
        Reveal(part=2, parts=2, envelopes=())
    with pytest.raises(OversizeError):
        Reveal(part=0, parts=1, envelopes=(b"x" * (256 * 1024),))
    item = Item("B", "t", b"\x00" * 32, 2)
    assert Reveal.from_wire(Reveal(0, 1, (b"raw",), (item,)).to_wire()).canaries == (item,)


def test_result_wire_form_is_compact_and_strict() -> None:
    ok = Result(A, 0.5, "t", "robust", {A: 0.5}, {A: 1}, {A: {B: 0.5, C: None}},
                params={"clip": 0.1}, weights={B: 1.0, C: 0.5}, requested=3, joined=4,
                labels={A: "B"}, canaries={"A": {B: 0.1, C: None}})  # fmt: skip
    wire = ok.to_wire()
    assert wire["executors"] == [A] and wire["verifiers"] == [B, C]
    assert wire["matrix"] == [[0.5, None]] and wire["weights"] == [1.0, 0.5]
    assert Result.from_wire(wire) == ok
    with pytest.raises(MalformedError):
        Result.from_wire({**wire, "counts": {}})  # counts are derived, never sent
    with pytest.raises(RangeError):
        Result.from_wire({**wire, "matrix": [[0.5]]})  # one cell per verifier
    with pytest.raises(RangeError):
        Result(**{**_fields(ok), "labels": {A: "A"}})  # canary A is also an executor's label
    with pytest.raises(RangeError):
        Result(**{**_fields(ok), "weights": {B: 2.0, C: 0.5}})


def _fields(result: Result) -> dict:
    from dataclasses import fields

    return {f.name: getattr(result, f.name) for f in fields(result)}
