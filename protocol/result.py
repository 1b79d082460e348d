"""The ``result`` body: the signed tally, and what it commits to.

In Python a :class:`Result` reads as mappings keyed by peer ID (``scores[executor][verifier]``,
``averages[executor]``...). On the wire it is compact: the executors and verifiers are listed
once and every per-peer value is a list in that order (a 24-peer result is a few kilobytes, not
the ~12 KB of peer-keyed maps). ``from_wire`` rebuilds the mappings and validates like the
constructor, strictly (every wire field present, no unknown one).

What the audit needs (ARCHITECTURE §11, "signed data is the truth"): the roles, ``params`` and
``weights`` of the aggregator (so the tally can be recomputed exactly), the blind ``labels``,
the ``canaries`` with each verifier's score, ``requested``/``joined`` (issue 14), and
:class:`Commitments`: the statement digest of every envelope the tally counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from protocol.errors import MalformedError, OversizeError, RangeError
from protocol.wire import (
    AGGREGATORS,
    MAX_ITEMS,
    MAX_NAME_CHARS,
    MAX_PARAMS,
    MAX_PARTICIPANTS,
    MAX_RESPONSE_CHARS,
    BodyBase,
    check_digest,
    check_int,
    check_label,
    check_map,
    check_opt_score,
    check_peer,
    check_peers,
    check_score,
    check_text,
    set_field,
    type_error,
)

__all__ = ["Commitments", "Result"]


def _digests(name: str, value: object, max_items: int) -> tuple[bytes, ...]:
    if not isinstance(value, list | tuple):
        raise type_error(name, "list", value)
    if len(value) > max_items:
        raise OversizeError(f"{len(value)} entries > {max_items}", field=name)
    return tuple(check_digest(f"{name}[{i}]", d) for i, d in enumerate(value))


@dataclass(frozen=True, slots=True)
class Commitments(BodyBase):
    """Statement digests (:func:`protocol.envelope.statement_digest`) of every envelope the
    result counted: the advertisement, the assignment, each executor's response, each item the
    verifiers judged (by label, canaries included) and each score batch, in the order counted.
    ``items_total`` is the ``total`` every item carried (so items can be rebuilt and checked).
    """

    KIND: ClassVar[str] = "commitments"  # a part of a result, never a message of its own
    advert: bytes
    assign: bytes
    responses: Mapping[bytes, bytes]
    items: Mapping[str, bytes]
    batches: tuple[bytes, ...]
    items_total: int

    def __post_init__(self) -> None:
        check_digest("commits.advert", self.advert)
        check_digest("commits.assign", self.assign)
        responses = check_map("commits.responses", self.responses, MAX_PARTICIPANTS)
        for ex, d in responses.items():
            check_peer("commits.responses.<key>", ex)
            check_digest("commits.responses.<value>", d)
        items = check_map("commits.items", self.items, MAX_ITEMS)
        for label, d in items.items():
            check_label("commits.items.<key>", label)
            check_digest("commits.items.<value>", d)
        batches = _digests("commits.batches", self.batches, 4 * MAX_ITEMS)
        if len(set(batches)) != len(batches):
            raise RangeError("a batch committed twice", field="commits.batches")
        check_int("commits.items_total", self.items_total, 0, MAX_ITEMS)
        set_field(self, "responses", responses)
        set_field(self, "items", items)
        set_field(self, "batches", batches)


_WIRE = (
    *("winner", "score", "text", "aggregator", "executors", "verifiers", "matrix", "averages"),
    *("missing", "params", "weights", "requested", "joined", "labels", "canaries", "commits"),
)
_COMMIT_WIRE = ("advert", "assign", "responses", "items", "batches", "items_total")


@dataclass(frozen=True, slots=True)
class Result(BodyBase):
    """Leader -> task topic: the tally.

    ``scores[executor][verifier]`` is the full matrix over *assigned* executors and verifiers;
    ``None`` means the score never arrived (missing, never 0.00). ``averages[executor]`` is
    ``None`` for an executor with no score; ``counts[executor]`` is the number of scores used.
    ``missing`` lists assigned peers that delivered nothing (executors without a response,
    verifiers without a single score). ``winner``/``score``/``text`` are ``None``/``None``/""
    when no executor could be ranked.

    ``params``/``weights`` (verifier -> weight) are what the aggregator used (empty unless it
    uses them); ``labels`` (executor -> blind label) and ``canaries`` (canary label -> verifier
    -> score) say how the verifiers judged; ``commits`` is ``None`` only for results built
    outside a session (tests, tools), which an audit refuses.
    """

    KIND: ClassVar[str] = "result"
    winner: bytes | None
    score: float | None
    text: str
    aggregator: str
    averages: Mapping[bytes, float | None]
    counts: Mapping[bytes, int]
    scores: Mapping[bytes, Mapping[bytes, float | None]]
    missing: tuple[bytes, ...] = ()
    params: Mapping[str, float] = field(default_factory=dict)
    weights: Mapping[bytes, float] = field(default_factory=dict)
    requested: int = 0
    joined: int = 0
    labels: Mapping[bytes, str] = field(default_factory=dict)
    canaries: Mapping[str, Mapping[bytes, float | None]] = field(default_factory=dict)
    commits: Commitments | None = None

    def __post_init__(self) -> None:
        if self.aggregator not in AGGREGATORS:
            raise RangeError(f"{self.aggregator!r} not one of {AGGREGATORS}", field="aggregator")
        check_text("text", self.text, MAX_RESPONSE_CHARS)
        averages = check_map("averages", self.averages, MAX_PARTICIPANTS)
        counts = check_map("counts", self.counts, MAX_PARTICIPANTS)
        matrix = check_map("scores", self.scores, MAX_PARTICIPANTS)
        for ex in averages:
            check_peer("averages.<key>", ex)
            averages[ex] = check_opt_score("averages", averages[ex])
        for ex in counts:
            check_peer("counts.<key>", ex)
            check_int("counts", counts[ex], 0, MAX_PARTICIPANTS)
        verifier_set: set[bytes] | None = None
        for ex, row in list(matrix.items()):
            check_peer("scores.<key>", ex)
            row = check_map("scores.<row>", row, MAX_PARTICIPANTS)
            for ver, value in row.items():
                check_peer("scores.<verifier>", ver)
                if ver == ex:
                    raise RangeError("an executor cannot score itself", field="scores")
                row[ver] = check_opt_score("scores.<value>", value)
            if verifier_set is None:
                verifier_set = set(row)
            elif set(row) != verifier_set:
                raise RangeError("every row must name the same verifiers", field="scores")
            matrix[ex] = row
        if not (set(averages) == set(counts) == set(matrix)):
            raise RangeError(
                "averages, counts and scores must name the same executors", field="averages"
            )
        if len(matrix) + len(verifier_set or ()) > MAX_PARTICIPANTS:
            raise OversizeError(f"more than {MAX_PARTICIPANTS} participants", field="scores")
        for ex, row in matrix.items():
            given = sum(1 for v in row.values() if v is not None)
            if counts[ex] != given:
                raise RangeError(f"count {counts[ex]} but {given} scores", field="counts")
            if (averages[ex] is None) != (given == 0):
                raise RangeError(
                    "an average needs scores and scores need an average", field="averages"
                )
        missing = check_peers("missing", self.missing, MAX_PARTICIPANTS, empty=True)
        if not set(missing) <= set(matrix) | (verifier_set or set()):
            raise RangeError("missing names a peer without a role", field="missing")
        if self.winner is None:
            if self.score is not None:
                raise RangeError("a score without a winner", field="score")
        else:
            check_peer("winner", self.winner)
            if self.winner not in averages:
                raise RangeError("the winner is not an executor", field="winner")
            set_field(self, "score", check_score("score", self.score))
            if averages[self.winner] is None:
                raise RangeError("the winner has no scores", field="winner")
        set_field(self, "averages", averages)
        set_field(self, "counts", counts)
        set_field(self, "scores", matrix)
        set_field(self, "missing", missing)
        self._check_inputs(set(matrix), verifier_set or set())

    def _check_inputs(self, executors: set[bytes], verifiers: set[bytes]) -> None:
        """params, weights, requested/joined, labels, canaries, commits."""
        params = check_map("params", self.params, MAX_PARAMS)
        for name, value in params.items():
            check_text("params.<key>", name, MAX_NAME_CHARS, empty=False)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise type_error(f"params.{name}", "number", value)
            if not math.isfinite(value):
                raise RangeError("not finite", field=f"params.{name}")
            params[name] = float(value)
        weights = check_map("weights", self.weights, MAX_PARTICIPANTS)
        if weights and set(weights) != verifiers:
            raise RangeError("weights must name exactly the verifiers", field="weights")
        for ver, w in weights.items():
            if isinstance(w, bool) or not isinstance(w, int | float):
                raise type_error("weights.<value>", "number", w)
            if not (math.isfinite(w) and 0.0 <= w <= 1.0):
                raise RangeError(f"{w} not in [0, 1]", field="weights")
            weights[ver] = float(w)
        check_int("requested", self.requested, 0, MAX_PARTICIPANTS)
        check_int("joined", self.joined, 0, MAX_PARTICIPANTS)
        labels = check_map("labels", self.labels, MAX_PARTICIPANTS)
        if labels and set(labels) != executors:
            raise RangeError("labels must name exactly the executors", field="labels")
        for label in labels.values():
            check_label("labels.<value>", label)
        if len(set(labels.values())) != len(labels):
            raise RangeError("two executors share a label", field="labels")
        canaries = check_map("canaries", self.canaries, MAX_ITEMS)
        for label, row in list(canaries.items()):
            check_label("canaries.<key>", label)
            if label in labels.values():
                raise RangeError(f"canary {label} is also an executor's label", field="canaries")
            row = check_map("canaries.<row>", row, MAX_PARTICIPANTS)
            if set(row) != verifiers:
                raise RangeError("a canary row must name the verifiers", field="canaries")
            canaries[label] = {v: check_opt_score("canaries.<value>", s) for v, s in row.items()}
        if self.commits is not None:
            if not isinstance(self.commits, Commitments):
                raise type_error("commits", "commitments", self.commits)
            if not set(self.commits.responses) <= executors:
                raise RangeError("a committed response from a non-executor", field="commits")
            judged = {labels[ex] for ex in self.commits.responses if ex in labels}
            if labels and set(self.commits.items) != judged | set(canaries):
                raise RangeError(
                    "committed items must be the responded labels and the canaries",
                    field="commits.items",
                )
        set_field(self, "params", params)
        set_field(self, "weights", weights)
        set_field(self, "labels", labels)
        set_field(self, "canaries", canaries)

    # -- read side ------------------------------------------------------------------------------
    @property
    def executors(self) -> tuple[bytes, ...]:
        return tuple(self.scores)

    @property
    def verifiers(self) -> tuple[bytes, ...]:
        for row in self.scores.values():
            return tuple(row)
        return tuple(self.weights)

    # -- compact wire form ----------------------------------------------------------------------
    def to_wire(self) -> dict[str, Any]:
        ex, ve = self.executors, self.verifiers
        commits = None
        if self.commits is not None:
            c = self.commits
            commits = {
                "advert": c.advert,
                "assign": c.assign,
                "responses": [c.responses.get(e) for e in ex],
                "items": dict(c.items),
                "batches": list(c.batches),
                "items_total": c.items_total,
            }
        return {
            "winner": self.winner,
            "score": self.score,
            "text": self.text,
            "aggregator": self.aggregator,
            "executors": list(ex),
            "verifiers": list(ve),
            "matrix": [[self.scores[e][v] for v in ve] for e in ex],
            "averages": [self.averages[e] for e in ex],
            "missing": list(self.missing),
            "params": dict(self.params),
            "weights": [self.weights[v] for v in ve] if self.weights else [],
            "requested": self.requested,
            "joined": self.joined,
            "labels": [self.labels[e] for e in ex] if self.labels else [],
            "canaries": {lab: [row[v] for v in ve] for lab, row in self.canaries.items()},
            "commits": commits,
        }

    @classmethod
    def from_wire(cls, data: object) -> Result:
        w = _strict(data, _WIRE, "body")
        ex = check_peers("executors", w["executors"], MAX_PARTICIPANTS, empty=True)
        ve = check_peers("verifiers", w["verifiers"], MAX_PARTICIPANTS, empty=True)
        if not ex and ve:
            raise RangeError("verifiers without executors", field="verifiers")
        matrix = _rows("matrix", w["matrix"], len(ex), len(ve))
        averages = _aligned("averages", w["averages"], len(ex))
        weights = _aligned("weights", w["weights"], len(ve), empty_ok=True)
        labels = _aligned("labels", w["labels"], len(ex), empty_ok=True)
        canaries = check_map("canaries", w["canaries"], MAX_ITEMS)
        canary_rows = {
            lab: dict(zip(ve, _aligned(f"canaries.{lab}", row, len(ve)), strict=True))
            for lab, row in canaries.items()
        }
        commits = None
        if w["commits"] is not None:
            c = _strict(w["commits"], _COMMIT_WIRE, "commits")
            responses = _aligned("commits.responses", c["responses"], len(ex))
            commits = Commitments(
                advert=c["advert"],
                assign=c["assign"],
                responses={e: d for e, d in zip(ex, responses, strict=True) if d is not None},
                items=c["items"],
                batches=c["batches"],
                items_total=c["items_total"],
            )
        scores = {e: dict(zip(ve, row, strict=True)) for e, row in zip(ex, matrix, strict=True)}
        return cls(
            winner=w["winner"],
            score=w["score"],
            text=w["text"],
            aggregator=w["aggregator"],
            averages=dict(zip(ex, averages, strict=True)),
            counts={e: sum(1 for s in row.values() if s is not None) for e, row in scores.items()},
            scores=scores,
            missing=w["missing"],
            params=w["params"],
            weights=dict(zip(ve, weights, strict=True)) if weights else {},
            requested=w["requested"],
            joined=w["joined"],
            labels=dict(zip(ex, labels, strict=True)) if labels else {},
            canaries=canary_rows,
            commits=commits,
        )


def _strict(data: object, names: tuple[str, ...] | list[str], where: str) -> dict[str, Any]:
    """Exactly these fields: none missing, none unknown (the bodies' rule)."""
    prefix = "" if where == "body" else f"{where}."
    if not isinstance(data, Mapping):
        raise type_error(where, "map", data)
    for key in data:
        if key not in names:
            raise MalformedError(
                f"unknown field {key!r}", field=f"{prefix}{key}", reason="unknown_field"
            )
    for name in names:
        if name not in data:
            raise MalformedError("missing field", field=f"{prefix}{name}", reason="missing_field")
    return dict(data)


def _aligned(name: str, value: object, n: int, *, empty_ok: bool = False) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise type_error(name, "list", value)
    if empty_ok and not value:
        return []
    if len(value) != n:
        raise RangeError(f"{len(value)} entries, expected {n}", field=name)
    return list(value)


def _rows(name: str, value: object, n: int, m: int) -> list[list[Any]]:
    rows = _aligned(name, value, n)
    return [_aligned(f"{name}[{i}]", row, m) for i, row in enumerate(rows)]
