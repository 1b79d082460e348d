"""What an audit proves, and how to carry the proof: :class:`AuditReport` and audit bundles.

A bundle is the self-contained proof of one session: the raw signed envelopes a node holds for
it, in one canonical msgpack map ``{format, task, envelopes}``. It needs no store and no network
to check (:func:`read_bundle`, then :func:`protocol.transcript.verify_transcript`): the
signatures carry the identities, and the result carries the commitments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from protocol.envelope import canonical, validate_task
from protocol.errors import MalformedError, OversizeError
from protocol.identity import peer_id_to_str, short_id

__all__ = ["BUNDLE_FORMAT", "MAX_BUNDLE_BYTES", "AuditReport", "export_bundle", "read_bundle"]

BUNDLE_FORMAT = "rnet-inference/audit-bundle/v1"
MAX_BUNDLE_BYTES = 64 * 1024 * 1024
_MAX_BUNDLE_ENVELOPES = 4_096


@dataclass(slots=True)
class AuditReport:
    """What the signed envelopes prove about one session. ``ok``: verified, no problem."""

    task: str | None
    envelopes: int = 0
    verified: int = 0
    leader: bytes | None = None
    aggregator: str | None = None
    params: dict[str, float] = field(default_factory=dict)
    weights: dict[bytes, float] = field(default_factory=dict)
    requested: int | None = None
    joined: int | None = None
    executors: tuple[bytes, ...] = ()
    verifiers: tuple[bytes, ...] = ()
    labels: dict[bytes, str] = field(default_factory=dict)
    responses: dict[bytes, str] = field(default_factory=dict)
    scores: dict[bytes, dict[bytes, float | None]] = field(default_factory=dict)
    canaries: dict[str, dict[bytes, float | None]] = field(default_factory=dict)
    averages: dict[bytes, float | None] = field(default_factory=dict)
    missing: tuple[bytes, ...] = ()
    winner: bytes | None = None  # recomputed from the signed scores
    winner_score: float | None = None
    winner_text: str | None = None
    result_winner: bytes | None = None  # what the result claims
    result_score: float | None = None
    has_result: bool = False
    aborted: str | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and (self.has_result or self.aborted is not None)

    def to_dict(self) -> dict[str, Any]:
        b58 = peer_id_to_str

        def opt(p: bytes | None) -> str | None:
            return b58(p) if p is not None else None

        return {
            "task": self.task,
            "ok": self.ok,
            "envelopes": self.envelopes,
            "verified": self.verified,
            "leader": opt(self.leader),
            "aggregator": self.aggregator,
            "params": self.params,
            "weights": {b58(v): w for v, w in self.weights.items()},
            "requested": self.requested,
            "joined": self.joined,
            "executors": [b58(p) for p in self.executors],
            "verifiers": [b58(p) for p in self.verifiers],
            "labels": {b58(e): lab for e, lab in self.labels.items()},
            "scores": {b58(e): {b58(v): s for v, s in r.items()} for e, r in self.scores.items()},
            "canaries": {
                lab: {b58(v): s for v, s in r.items()} for lab, r in self.canaries.items()
            },
            "averages": {b58(e): a for e, a in self.averages.items()},
            "missing": [b58(p) for p in self.missing],
            "winner": opt(self.winner),
            "winner_score": self.winner_score,
            "result_winner": opt(self.result_winner),
            "result_score": self.result_score,
            "has_result": self.has_result,
            "aborted": self.aborted,
            "problems": self.problems,
            "notes": self.notes,
        }

    def render(self) -> str:
        lines = [f"session {self.task}: {self.verified}/{self.envelopes} signatures verified"]
        lines.append(
            f"  leader {short_id(self.leader) if self.leader else '?'}, aggregator "
            f"{self.aggregator or '?'}, requested {self.requested}, joined {self.joined}"
        )
        lines.append(
            f"  executors {', '.join(short_id(p) for p in self.executors) or '-'}; "
            f"verifiers {', '.join(short_id(p) for p in self.verifiers) or '-'}"
        )
        for ex, avg in self.averages.items():
            mark = "*" if ex == self.winner else " "
            value = "-" if avg is None else f"{avg:.4f}"
            lines.append(f"  {mark} {short_id(ex)} ({self.labels.get(ex, '?')})  {value}")
        for label, row in self.canaries.items():
            given = ", ".join(f"{short_id(v)} {s:.2f}" for v, s in row.items() if s is not None)
            lines.append(f"    canary {label}: {given or 'not scored'}")
        if self.aborted is not None:
            lines.append(f"  aborted by the leader: {self.aborted}")
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  FAILED: {p}" for p in self.problems]
        lines.append("audit OK" if self.ok else "audit FAILED")
        return "\n".join(lines)


def export_bundle(task: str, raws: Sequence[bytes]) -> bytes:
    """The bundle of ``task``: its raw envelopes, as stored (no check here; the reader checks)."""
    validate_task(task)
    return canonical({"format": BUNDLE_FORMAT, "task": task, "envelopes": list(raws)})


def read_bundle(data: bytes) -> tuple[str, list[bytes]]:
    """``(task, raw envelopes)`` from a bundle; :class:`~protocol.errors.ProtocolError` if it is
    not one (the envelopes themselves are checked by the audit)."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise OversizeError(f"{len(data)} bytes > {MAX_BUNDLE_BYTES}", field="bundle")
    try:
        decoded = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises many unrelated types on garbage; all mean the same
        raise MalformedError(f"not an audit bundle: {exc}", reason="not_msgpack") from None
    if not isinstance(decoded, dict) or decoded.get("format") != BUNDLE_FORMAT:
        raise MalformedError(f"not an audit bundle (format {BUNDLE_FORMAT} expected)")
    if set(decoded) != {"format", "task", "envelopes"}:
        raise MalformedError("an audit bundle has exactly: format, task, envelopes")
    task, raws = decoded["task"], decoded["envelopes"]
    validate_task(task)
    if not isinstance(raws, list) or not all(isinstance(r, bytes) for r in raws):
        raise MalformedError("envelopes must be a list of byte strings", field="envelopes")
    if len(raws) > _MAX_BUNDLE_ENVELOPES:
        raise OversizeError(f"more than {_MAX_BUNDLE_ENVELOPES} envelopes", field="envelopes")
    return task, raws
