"""Audit of one session from signed envelopes alone: :func:`verify_transcript`.

Input: the raw envelopes a node holds for a task (from its store, or an exported bundle), in any
order. Nothing else is trusted: no table, no role column, no "this node was the leader" flag.

The advertisement names the leader. The leader's one signed ``result`` commits (statement
digests, :func:`protocol.envelope.statement_digest`) to every envelope it counted; its
``reveal`` messages carry the responses and score batches every participant needs. From those
the audit derives the roles (the committed assignment), the answers (the committed responses),
every item (rebuilt from its response, label and ``items_total``, or revealed for canaries),
and the score matrix (replaying the committed batches in the order counted, first score per
cell wins, as the leader does). It recomputes the tally with the result's aggregator, params
and weights and compares everything with what the result says.

Any committed envelope that is missing or does not match, any signed response or score batch
of this session that the result does not count, any second version of a leader statement, is a
*problem* naming what is wrong; the audit passes only with none. A session that ended in a
signed ``abort`` passes with nothing to recompute.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

from protocol.blind import item_text
from protocol.envelope import Envelope, open_envelope, statement_digest
from protocol.errors import ProtocolError
from protocol.identity import short_id
from protocol.messages import (
    Abort,
    Advertise,
    Assign,
    Item,
    Response,
    Result,
    Reveal,
    Score,
    Scores,
)
from protocol.proof import AuditReport
from protocol.structured import answer_problem
from protocol.tally import tally

__all__ = ["AuditReport", "verify_transcript"]  # AuditReport lives in protocol.proof

logger = logging.getLogger(__name__)

_EPS = 1e-9  # averages travel as float64; a recomputation must agree up to rounding noise
_LEADER_KINDS = ("assign", "item", "reveal", "result", "abort")


def verify_transcript(raws: Iterable[bytes], task: str | None = None) -> AuditReport:
    """Audit the session ``task`` (default: the one the envelopes are about) from raw signed
    envelopes alone. Never raises on bad input: everything wrong is a problem in the report."""
    report = AuditReport(task=task)
    envs = _open_all(report, list(raws))
    if report.task is None:
        tasks = sorted({e.task for e in envs if e.task})
        if len(tasks) > 1:
            report.problems.append(f"envelopes of several tasks: {', '.join(tasks)}")
        report.task = tasks[0] if tasks else None
    envs = [e for e in envs if e.task == report.task]
    if not envs:
        report.problems.append("no signed envelope of this task")
        return report
    _Audit(report, envs).run()
    return report


def _open_all(report: AuditReport, raws: list[bytes]) -> list[Envelope]:
    out = []
    for i, raw in enumerate(raws):
        report.envelopes += 1
        try:
            env = open_envelope(raw)
        except ProtocolError as exc:
            report.problems.append(f"envelope #{i}: {exc}")
            continue
        report.verified += 1
        out.append(env)
    return out


class _Audit:
    def __init__(self, report: AuditReport, envs: list[Envelope]) -> None:
        self.r = report
        self.envs = envs
        self.problem = report.problems.append
        self.note = report.notes.append

    def of(self, kind: str, sender: bytes | None = None) -> list[Envelope]:
        """Distinct statements of ``kind`` (by digest), optionally from one sender only."""
        seen: dict[bytes, Envelope] = {}
        for e in self.envs:
            if e.kind == kind and (sender is None or e.sender == sender):
                seen.setdefault(e.digest, e)
        return list(seen.values())

    def run(self) -> None:
        adverts = self.of("advertise")
        results = self.of("result")
        if adverts:
            leader = adverts[0].sender
            if len(adverts) > 1:
                self.problem("more than one advertisement for this task (different statements)")
        elif results:
            leader = results[0].sender
            self.problem("no signed advertisement: the leader cannot be established from it")
        else:
            self.problem("no signed advertisement and no result: nothing to verify")
            return
        self.leader = self.r.leader = leader
        self.advert = adverts[0] if adverts else None
        for kind in _LEADER_KINDS:
            for e in self.of(kind):
                if e.sender != leader:
                    self.problem(f"{kind} from {short_id(e.sender)}, who is not the leader")
        self._expand_reveals()
        results = self.of("result", leader)
        aborts = self.of("abort", leader)
        if len(results) > 1:
            self.problem(f"the leader signed {len(results)} different results")
        if not results:
            if aborts:
                body = aborts[0].body
                assert isinstance(body, Abort)
                self.r.aborted = body.reason
                self._check_nothing_counted()
            else:
                self.problem("no signed result: the session did not finish, or its result is gone")
            return
        if aborts:
            self.problem("the leader signed both an abort and a result")
        result = results[0].body
        assert isinstance(result, Result)
        self.r.has_result = True
        self.result = result
        self._check_result(result)

    def _expand_reveals(self) -> None:
        """Open the envelopes the leader republished; they join the transcript."""
        self.canary_items: list[Item] = []
        inner: list[Envelope] = []
        for e in self.of("reveal", self.leader):
            body = e.body
            assert isinstance(body, Reveal)
            self.canary_items += body.canaries
            for raw in body.envelopes:
                self.r.envelopes += 1
                try:
                    env = open_envelope(raw)
                except ProtocolError as exc:
                    self.problem(f"an envelope revealed by the leader is invalid: {exc}")
                    continue
                self.r.verified += 1
                if env.task != self.r.task or env.kind not in ("response", "score", "scores"):
                    self.problem(f"the reveal carries a {env.kind} of task {env.task!r}")
                    continue
                inner.append(env)
        self.envs += inner

    def _check_nothing_counted(self) -> None:
        if self.of("reveal", self.leader):
            self.problem("an aborted session with a reveal")

    # -- the result against the transcript ------------------------------------------------------
    def _check_result(self, result: Result) -> None:
        r, c = self.r, result.commits
        r.result_winner, r.result_score = result.winner, result.score
        r.aggregator, r.params, r.weights = (
            result.aggregator,
            dict(result.params),
            dict(result.weights),
        )
        r.requested, r.joined = result.requested, result.joined
        if c is None:
            self.problem("the result commits to no envelope (not made by a v2 session)")
            return
        if self.advert is None or c.advert != self.advert.digest:
            self.problem("the advertisement the result commits to is missing or different")
        else:
            advert = self.advert.body
            assert isinstance(advert, Advertise)
            if advert.aggregator != result.aggregator:
                self.problem(
                    f"the result uses {result.aggregator}, the advertisement said {advert.aggregator}"
                )
        assigns = {e.digest: e for e in self.of("assign", self.leader)}
        if c.assign not in assigns:
            self.problem("the assignment the result commits to is missing")
            return
        if len(assigns) > 1:
            self.problem("the leader signed more than one assignment")
        assign = assigns[c.assign].body
        assert isinstance(assign, Assign)
        r.executors, r.verifiers = assign.executors, assign.verifiers
        if set(result.executors) != set(assign.executors) or (
            result.scores and set(result.verifiers) != set(assign.verifiers)
        ):
            self.problem("the result's roles differ from the signed assignment")
            return
        taken = len(assign.executors) + len(assign.verifiers)
        if result.joined < taken or (result.requested and taken > result.requested):
            self.problem(
                f"the result says {result.requested} requested and {result.joined} joined, "
                f"but {taken} were assigned"
            )
        if not result.labels:
            self.problem("the result has no label map")
            return
        r.labels = dict(result.labels)
        responses = self._responses(result)
        self._items(result, responses)
        self._tally(result, responses, self._batches(result))

    def _responses(self, result: Result) -> dict[bytes, Envelope]:
        c = result.commits
        assert c is not None
        found: dict[bytes, Envelope] = {}
        for e in self.of("response"):
            if e.sender not in self.r.executors:
                self.problem(f"a response from {short_id(e.sender)}, who is not an executor")
            elif e.sender not in c.responses and (why := self._dropped(e)) is not None:
                self.note(f"dropped: the response of {short_id(e.sender)} ({why})")
            elif c.responses.get(e.sender) != e.digest:
                self.problem(
                    f"a signed response of {short_id(e.sender)} is not the one the result "
                    "counts (late, left out, or a second answer)"
                )
            else:
                found[e.sender] = e
                if (why := self._dropped(e)) is not None:  # the leader must drop it (issue 17)
                    self.problem(f"the response of {short_id(e.sender)} was counted: {why}")
        for ex in c.responses:
            if ex not in found:
                self.problem(f"the response of {short_id(ex)} the result counts is missing")
        self.r.responses = {ex: e.body.text for ex, e in found.items()}  # type: ignore[union-attr]
        return found

    def _dropped(self, e: Envelope) -> str | None:
        """Why the leader must drop this response (not the format/tools asked), if so."""
        if self.advert is None or not isinstance(e.body, Response):
            return None
        advert = self.advert.body
        assert isinstance(advert, Advertise)
        return answer_problem(advert, e.body)

    def _items(self, result: Result, responses: dict[bytes, Envelope]) -> None:
        c = result.commits
        assert c is not None
        bodies: dict[str, Item] = {}
        for ex, e in responses.items():
            body = e.body
            assert isinstance(body, Response)
            label = result.labels[ex]
            bodies[label] = Item(label, item_text(body), e.digest, c.items_total)
        # canaries: revealed in full, or held here as the item the leader sent
        held = [e.body for e in self.of("item", self.leader) if isinstance(e.body, Item)]
        for item in [*self.canary_items, *held]:
            bodies.setdefault(item.label, item)
        for label, digest in c.items.items():
            body = bodies.get(label)
            if body is None:
                self.problem(f"item {label}: its text is not in the transcript (canary unrevealed)")
            elif statement_digest("item", self.r.task or "", self.leader, body) != digest:
                self.problem(f"item {label}: the committed item is not the signed response as sent")
        for e in self.of("item", self.leader):
            assert isinstance(e.body, Item)
            if c.items.get(e.body.label) != e.digest:
                self.problem(
                    f"item {e.body.label} as received here is not the one the result commits "
                    "(the leader altered a text, or sent two versions)"
                )

    def _batches(self, result: Result) -> dict[str, dict[bytes, float | None]]:
        c = result.commits
        assert c is not None
        committed = set(c.batches)
        present: dict[bytes, Envelope] = {}
        for kind in ("score", "scores"):
            for e in self.of(kind):
                if e.digest in committed:
                    present[e.digest] = e
                    if e.sender not in self.r.verifiers:
                        self.problem(
                            f"the result counts scores of non-verifier {short_id(e.sender)}"
                        )
                elif e.sender in self.r.verifiers:
                    self.problem(
                        f"a signed score batch of {short_id(e.sender)} is not counted by the "
                        "result (late, or left out)"
                    )
                else:
                    self.note(f"ignored: scores from {short_id(e.sender)}, not a verifier")
        cells: dict[str, dict[bytes, float | None]] = {}
        for i, d in enumerate(c.batches):
            e = present.get(d)
            if e is None:
                self.problem(f"score batch #{i} counted by the result is missing")
                continue
            body = e.body
            if isinstance(body, Score):
                entries: list[tuple[str, float | None]] = [(body.label, body.score)]
            else:
                assert isinstance(body, Scores)
                entries = [(x.label, x.score) for x in body.entries]
                entries += [(f, None) for f in body.failed]
            for label, value in entries:
                if label in c.items:
                    cells.setdefault(label, {}).setdefault(e.sender, value)  # first one counts
        return cells

    def _tally(
        self,
        result: Result,
        responses: dict[bytes, Envelope],
        cells: dict[str, dict[bytes, float | None]],
    ) -> None:
        r = self.r
        matrix = {
            ex: {v: s for v, s in cells.get(result.labels[ex], {}).items() if s is not None}
            for ex in r.executors
            if ex in responses
        }
        for ex in r.executors:
            for ver in r.verifiers:
                claimed = result.scores.get(ex, {}).get(ver)
                signed = matrix.get(ex, {}).get(ver)
                if not _same(claimed, signed):
                    self.problem(
                        f"score[{short_id(ex)}][{short_id(ver)}]: the result says "
                        f"{_fmt(claimed)}, the signed batches say {_fmt(signed)}"
                    )
        canary_labels = set(result.commits.items) - set(result.labels.values())  # type: ignore[union-attr]
        if canary_labels != set(result.canaries):
            self.problem("the result's canaries are not the committed items without an executor")
        for label in sorted(canary_labels):
            row = {v: cells.get(label, {}).get(v) for v in r.verifiers}
            r.canaries[label] = row
            claimed_row = result.canaries.get(label, {})
            if any(not _same(claimed_row.get(v), s) for v, s in row.items()):
                self.problem(f"canary {label}: the result's scores differ from the signed batches")
        try:
            t = tally(
                r.executors,
                r.verifiers,
                matrix,
                responded=responses.keys(),
                aggregator=result.aggregator,
                weights=result.weights or None,
                params=result.params or None,
            )
        except ValueError as exc:
            self.problem(f"the tally cannot be recomputed: {exc}")
            return
        r.scores, r.averages, r.missing = t.scores, t.averages, t.missing
        r.winner, r.winner_score = t.winner, t.winner_score
        if t.winner is not None:
            r.winner_text = r.responses.get(t.winner)
        for ex in r.executors:
            if not _same(t.averages.get(ex), result.averages.get(ex)):
                self.problem(
                    f"average of {short_id(ex)}: the result says {_fmt(result.averages.get(ex))}, "
                    f"recomputed {_fmt(t.averages.get(ex))}"
                )
        if set(t.missing) != set(result.missing):
            self.problem("the result's missing list differs from the recomputed one")
        if t.winner != result.winner:
            self.problem(
                f"winner: the result says {short_id(result.winner) if result.winner else '-'}, "
                f"recomputed {short_id(t.winner) if t.winner else '-'}"
            )
        elif not _same(t.winner_score, result.score):
            self.problem(
                f"winning score: the result says {result.score}, recomputed {t.winner_score}"
            )
        if t.winner is not None and r.winner_text != result.text:
            self.problem("the result's text is not the winner's signed response")


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=0, abs_tol=_EPS)


def _fmt(x: float | None) -> str:
    return "none" if x is None else f"{x:.4f}"
