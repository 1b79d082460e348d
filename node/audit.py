"""Audit of one stored session: trust nothing but the signatures.

From the raw envelopes in a node's store this re-verifies every signature, checks that the
stored row says what the signed bytes say, replays the role rules (only the advertiser assigns
and finalizes, only assigned executors respond, only assigned verifiers score and never their own
response) and recomputes the tally from the signed scores with the advertised aggregator. The
signed ``result`` must agree: same matrix, same averages, same winner, the winner's own text.

A leader's store holds every score it accepted, so there every signed score must be in the result
and every score in the result must be signed. A participant may have missed some messages (the
mesh drops under bursts, §10), so there an unbacked cell is reported as "not seen here" rather
than a mismatch; the arithmetic is still checked.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from node.store import Store
from protocol.envelope import Envelope, open_envelope
from protocol.errors import ProtocolError
from protocol.identity import peer_id_to_str, short_id
from protocol.messages import Advertise, Assign, Response, Result, Score, Scores
from protocol.structured import answer_problem
from protocol.tally import tally

logger = logging.getLogger(__name__)

# Averages travel as float64 through msgpack; recomputation must be exact up to rounding noise.
_EPS = 1e-9


@dataclass(slots=True)
class AuditReport:
    """What ``rnet audit`` prints. ``ok`` is False on any mismatch or bad signature."""

    task: str
    envelopes: int = 0
    verified: int = 0
    leader: str | None = None
    role: str | None = None
    aggregator: str | None = None
    executors: list[str] = field(default_factory=list)
    verifiers: list[str] = field(default_factory=list)
    winner: str | None = None
    recomputed_winner: str | None = None
    averages: dict[str, float | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    has_result: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems and self.envelopes > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "ok": self.ok,
            "envelopes": self.envelopes,
            "verified": self.verified,
            "leader": self.leader,
            "role": self.role,
            "aggregator": self.aggregator,
            "executors": self.executors,
            "verifiers": self.verifiers,
            "winner": self.winner,
            "recomputed_winner": self.recomputed_winner,
            "averages": self.averages,
            "has_result": self.has_result,
            "problems": self.problems,
            "notes": self.notes,
        }

    def render(self) -> str:
        lines = [
            f"session {self.task}: {self.verified}/{self.envelopes} signatures verified",
            f"  leader {self.leader or '?'} (this node: {self.role or '?'}), "
            f"aggregator {self.aggregator or '?'}",
            f"  executors {', '.join(short_id(p) for p in self.executors) or '-'}; "
            f"verifiers {', '.join(short_id(p) for p in self.verifiers) or '-'}",
        ]
        for ex, avg in sorted(self.averages.items()):
            mark = "*" if ex == self.recomputed_winner else " "
            lines.append(f"  {mark} {short_id(ex)}  {'-' if avg is None else f'{avg:.4f}'}")
        if self.has_result:
            lines.append(
                f"  result winner {short_id(self.winner) if self.winner else '-'}; "
                f"recomputed {short_id(self.recomputed_winner) if self.recomputed_winner else '-'}"
            )
        else:
            lines.append("  no result stored")
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  MISMATCH: {p}" for p in self.problems]
        if self.envelopes == 0:
            lines.append("  MISMATCH: no envelopes stored for this task")
        lines.append("audit OK" if self.ok else "audit FAILED")
        return "\n".join(lines)


def audit_task(store: Store, task: str) -> AuditReport:
    """Audit ``task`` as stored in ``store``."""
    report = AuditReport(task=task)
    stored = store.session(task)
    report.role = stored.role if stored else None
    rows = store.envelopes(task)
    report.envelopes = len(rows)
    envelopes: list[Envelope] = []
    for row in rows:
        label = f"envelope #{row.id} ({row.kind} from {row.sender[-6:]} seq {row.seq})"
        try:
            env = open_envelope(row.raw)
        except ProtocolError as exc:
            report.problems.append(f"{label}: {exc}")
            continue
        stated = (row.task, row.kind, row.sender, row.seq)
        actual = (env.task, env.kind, peer_id_to_str(env.sender), env.seq)
        if stated != actual:
            report.problems.append(f"{label}: stored as {stated} but the signed bytes say {actual}")
            continue
        report.verified += 1
        envelopes.append(env)
    _check_session(report, envelopes, leader_store=report.role == "leader")
    return report


def _check_session(report: AuditReport, envelopes: list[Envelope], *, leader_store: bool) -> None:
    adverts = [e for e in envelopes if isinstance(e.body, Advertise)]
    if not adverts:
        report.problems.append("no signed advertise: the leader cannot be established")
        return
    leader = adverts[0].sender
    advert: Advertise = adverts[0].body  # type: ignore[assignment]
    report.leader = peer_id_to_str(leader)
    report.aggregator = advert.aggregator
    if any(e.sender != leader for e in adverts):
        report.problems.append("advertise envelopes from more than one sender")

    def from_leader(kind: type) -> list[Envelope]:
        found = [e for e in envelopes if isinstance(e.body, kind)]
        for e in found:
            if e.sender != leader:
                report.problems.append(
                    f"{e.kind} from {short_id(e.sender)}, who is not the leader, was accepted"
                )
        return [e for e in found if e.sender == leader]

    assigns = from_leader(Assign)
    results = from_leader(Result)
    if not assigns:
        if results:
            report.problems.append("a result without an assignment")
        report.notes.append("no assignment stored: the session never reached execution here")
        return
    if len({e.raw for e in assigns}) > 1:
        report.problems.append("the leader sent more than one different assignment")
    assign: Assign = assigns[0].body  # type: ignore[assignment]
    executors, verifiers = list(assign.executors), list(assign.verifiers)
    report.executors = [peer_id_to_str(p) for p in executors]
    report.verifiers = [peer_id_to_str(p) for p in verifiers]

    responses: dict[bytes, str] = {}
    for e in envelopes:
        if not isinstance(e.body, Response):
            continue
        if e.sender not in executors:
            report.problems.append(f"response from non-executor {short_id(e.sender)} accepted")
        elif e.sender in responses:
            report.problems.append(f"second response from {short_id(e.sender)} accepted")
        elif (problem := answer_problem(advert, e.body)) is not None:
            # the leader must drop answers that break the advertised format/tools (issue 17)
            report.problems.append(f"response from {short_id(e.sender)} accepted: {problem}")
        else:
            responses[e.sender] = e.body.text

    signed: dict[bytes, dict[bytes, float]] = {ex: {} for ex in executors}
    for e in envelopes:
        if isinstance(e.body, Score):
            entries = [(e.body.executor, e.body.score)]
        elif isinstance(e.body, Scores):
            entries = [(x.executor, x.score) for x in e.body.entries]
            for ex in e.body.failed:  # "could not judge": the cell stays missing
                if e.sender not in verifiers:
                    report.problems.append(
                        f"failure report by {short_id(e.sender)} for {short_id(ex)}: "
                        "not an assigned verifier, yet accepted"
                    )
        else:
            continue
        for ex, value in entries:
            who = f"score by {short_id(e.sender)} for {short_id(ex)}"
            if e.sender not in verifiers:
                report.problems.append(f"{who}: not an assigned verifier, yet accepted")
            elif ex == e.sender:
                report.problems.append(f"{who}: a self-score was accepted")
            elif ex not in signed:
                report.problems.append(f"{who}: not an assigned executor, yet accepted")
            elif e.sender in signed[ex]:
                report.problems.append(f"{who}: scored twice")
            else:
                signed[ex][e.sender] = value

    if not results:
        report.notes.append("no result stored")
        report.averages = {peer_id_to_str(ex): None for ex in executors}
        return
    report.has_result = True
    if len({e.raw for e in results}) > 1:
        report.problems.append("the leader sent more than one different result")
    result: Result = results[0].body  # type: ignore[assignment]
    report.winner = peer_id_to_str(result.winner) if result.winner else None
    if result.aggregator != advert.aggregator:
        report.problems.append(
            f"result uses aggregator {result.aggregator}, the advertisement said {advert.aggregator}"
        )
    if set(result.scores) != set(executors):
        report.problems.append("the result's executors differ from the assignment")
    if result.scores and set(result.verifiers) != set(verifiers):
        report.problems.append("the result's verifiers differ from the assignment")

    # The matrix the result claims must be backed by signed scores (cell by cell).
    for ex in executors:
        claimed_row = result.scores.get(ex, {})
        for ver in verifiers:
            if ver == ex:
                continue
            claimed = claimed_row.get(ver)
            have = signed.get(ex, {}).get(ver)
            cell = f"score[{short_id(ex)}][{short_id(ver)}]"
            if claimed is None and have is not None:
                if leader_store:
                    report.problems.append(f"{cell}: signed {have:.2f} but left out of the result")
                else:
                    report.notes.append(f"{cell}: signed {have:.2f}, the result has none (late?)")
            elif claimed is not None and have is None:
                if leader_store:
                    report.problems.append(f"{cell}: {claimed:.2f} in the result, no signed score")
                else:
                    report.notes.append(f"{cell}: {claimed:.2f} in the result, not seen here")
            elif claimed is not None and have is not None and not _same(claimed, have):
                report.problems.append(f"{cell}: result says {claimed}, signed score says {have}")

    # Recompute from the result's own matrix (every cell of which was checked above).
    matrix = {
        ex: {v: s for v, s in result.scores.get(ex, {}).items() if s is not None}
        for ex in executors
    }
    responded = [ex for ex in executors if ex not in result.missing]
    recomputed = tally(
        executors, verifiers, matrix, responded=responded, aggregator=result.aggregator
    )
    report.averages = {peer_id_to_str(ex): avg for ex, avg in recomputed.averages.items()}
    report.recomputed_winner = (
        peer_id_to_str(recomputed.winner) if recomputed.winner is not None else None
    )
    if set(recomputed.missing) != set(result.missing):
        report.problems.append("the result's missing list differs from the recomputed one")
    if leader_store:
        for ex in result.missing:
            if ex in responses:
                report.problems.append(
                    f"{short_id(ex)} is listed missing but its response is signed"
                )
    for ex in executors:
        a, b = recomputed.averages.get(ex), result.averages.get(ex)
        if (a is None) != (b is None) or (a is not None and b is not None and not _same(a, b)):
            report.problems.append(f"average of {short_id(ex)}: result {b}, recomputed {a}")
    if recomputed.winner != result.winner:
        report.problems.append(
            f"winner: result {short_id(result.winner) if result.winner else '-'}, "
            f"recomputed {short_id(recomputed.winner) if recomputed.winner else '-'}"
        )
    if result.winner is not None:
        if (
            result.score is None
            or recomputed.winner_score is None
            or not _same(result.score, recomputed.winner_score)
        ):
            report.problems.append(
                f"winning score: result {result.score}, recomputed {recomputed.winner_score}"
            )
        text = responses.get(result.winner)
        if text is None:
            msg = "the winner's signed response is not in the transcript"
            (report.problems if leader_store else report.notes).append(msg)
        elif text != result.text:
            report.problems.append("the result's text is not the winner's signed response")


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=0, abs_tol=_EPS)
