"""Audit of one stored session: trust nothing but the signatures.

The verdict comes from the raw signed envelopes alone (:func:`protocol.transcript.
verify_transcript`): roles, answers, scores, canaries and the winner are derived from them and
checked against the commitments of the leader's signed result. The store's other tables are
caches; here they are only compared with what the signed data says, and any disagreement is a
problem (someone edited the store): the ``envelopes`` row columns (task, kind, sender, seq) against
the bytes, ``sessions.role`` against the role the signed assignment gives this node (its key is
in the data dir), and the ``results`` row (winner, score) against the signed result.

:func:`derived_session` is what ``rnet sessions`` shows: the outcome re-derived from the
envelopes, or ``None`` when they do not verify (shown as unverified).
"""

from __future__ import annotations

import logging
from pathlib import Path

from node.keys import KEY_FILE, KeyError_, parse_seed
from node.store import Store
from protocol.envelope import open_envelope
from protocol.errors import ProtocolError
from protocol.identity import NaclSigner, peer_id_to_str
from protocol.proof import AuditReport, export_bundle
from protocol.transcript import verify_transcript

__all__ = ["AuditReport", "audit_task", "derived_session", "export_task", "node_peer_id"]

logger = logging.getLogger(__name__)

_EPS = 1e-9


def node_peer_id(data_dir: Path) -> bytes | None:
    """The peer ID of the node that owns ``data_dir`` (from its key), if it has one."""
    try:
        seed = parse_seed((Path(data_dir) / KEY_FILE).read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError, KeyError_):
        return None
    return NaclSigner(seed).peer_id


def audit_task(store: Store, task: str, *, me: bytes | None = None) -> AuditReport | None:
    """Audit ``task`` as stored in ``store``; ``None`` when the store holds nothing of it.
    ``me``: the store owner's peer ID, to check the unsigned ``sessions.role``."""
    rows = store.envelopes(task)
    stored = store.session(task)
    if not rows and stored is None:
        return None
    report = verify_transcript([row.raw for row in rows], task)
    for row in rows:
        try:
            env = open_envelope(row.raw)
        except ProtocolError:
            continue  # verify_transcript named it
        stated = (row.task, row.kind, row.sender, row.seq)
        actual = (env.task, env.kind, peer_id_to_str(env.sender), env.seq)
        if stated != actual:
            report.problems.append(
                f"envelope row #{row.id} is filed as {stated} but its signed bytes say {actual}"
            )
    if stored is not None and me is not None and report.leader is not None:
        signed_role = _role_of(report, me)
        if signed_role is not None and stored.role != signed_role:
            report.problems.append(
                f"sessions.role says {stored.role}, the signed assignment makes this node "
                f"{signed_role}"
            )
    if report.has_result:
        winner = peer_id_to_str(report.result_winner) if report.result_winner else None
        cached = store.result(task)
        caches = []  # (where, winner, score) of each cache that exists
        if stored is not None and stored.has_result:
            caches.append(("the results table", stored.winner, stored.score))
        if cached is not None:
            caches.append(("the stored result event", cached.get("winner"), cached.get("score")))
        for where, cw, cs in caches:
            if cw != winner or not _same(cs, report.result_score):
                report.problems.append(
                    f"{where} says winner {cw} score {cs}, the signed result says {winner} "
                    f"score {report.result_score}"
                )
    return report


def _role_of(report: AuditReport, me: bytes) -> str | None:
    if me == report.leader:
        return "leader"
    if me in report.executors:
        return "executor"
    if me in report.verifiers:
        return "verifier"
    return None


def _same(a: object, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return isinstance(a, int | float) and abs(float(a) - b) <= _EPS


def derived_session(store: Store, task: str) -> AuditReport | None:
    """The session's outcome re-derived from its signed envelopes (no cache read)."""
    rows = store.envelopes(task)
    return verify_transcript([row.raw for row in rows], task) if rows else None


def export_task(store: Store, task: str) -> bytes | None:
    """The self-contained bundle of ``task`` (its raw envelopes), or ``None`` if none stored."""
    rows = store.envelopes(task)
    return export_bundle(task, [row.raw for row in rows]) if rows else None
