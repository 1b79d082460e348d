"""Session snapshots and results as events: what the console, ``--json`` and the gateway see.

One conversion: :meth:`protocol.effects.SessionSnapshot.to_dict` turns peer ids into base58
text; the ``session`` and ``result`` events are cut from that dict. Once a session finished, its
snapshot *is* the tally of its result (winner, averages, matrix, missing), so the ``result``
event needs only the winning text on top. Deadlines leave the monotonic clock here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from node import events as ev
from node.sessions.ports import to_wall_ms
from protocol.identity import short_id

if TYPE_CHECKING:
    from protocol.effects import SessionSnapshot, SnapshotDict
    from protocol.messages import Response, Result


def _missing(d: SnapshotDict, has_result: bool) -> ev.Missing:
    """Executors without a response, verifiers without any score (both as the machine says),
    and the empty cells of executors that did respond (pending until the session ends)."""
    missing = d["missing"]
    responded = {e for e, text in d["responses"].items() if text is not None}
    if has_result:
        responded |= {e for e in d["scores"] if e not in missing}
    cells = {
        e: [v for v, s in row.items() if s is None]
        for e, row in d["scores"].items()
        if e in responded and any(s is None for s in row.values())
    }
    return ev.Missing(
        executors=[p for p in missing if p in d["executors"]],
        verifiers=[p for p in missing if p in d["verifiers"]],
        scores=cells,
    )


def snapshot_event(snap: SessionSnapshot) -> ev.Session:
    d = snap.to_dict()
    responded = [e for e, t in snap.responses.items() if t is not None]
    verifiers = set(snap.verifiers)
    return ev.Session(
        task=d["task"],
        leader=d["leader"],
        role=d["role"],
        stage=d["stage"],
        stage_deadline_ms=to_wall_ms(snap.stage_deadline_ms),
        prompt=d["prompt"],
        joined=d["joined"],
        executors=d["executors"],
        verifiers=d["verifiers"],
        responses=d["responses"],
        scores=d["scores"],
        missing=_missing(d, has_result=False),
        averages=d["averages"],
        winner=d["winner"],
        counts={
            "joined": len(snap.joined),
            "executors": len(snap.executors),
            "verifiers": len(snap.verifiers),
            "responses": len(responded),
            "responses_expected": len(snap.executors),
            "scores": sum(1 for row in snap.scores.values() for s in row.values() if s is not None),
            "scores_expected": sum(len(verifiers - {e}) for e in responded),
        },
    )


def result_event(
    snap: SessionSnapshot,
    result: Result | None,
    timings: Mapping[str, float],
    reason: str = "",
    *,
    requested: int = 0,
) -> ev.Result:
    """The ``result`` event of a finished session, from its last snapshot (which shows the
    result's tally) and the result's winning text; ``result`` is None for an aborted one.
    ``requested``: the providers the advertisement asked for (``pipe N``; 0 when not fixed)."""
    d = snap.to_dict()
    return ev.Result(
        task=d["task"],
        leader=d["leader"],
        winner=d["winner"],
        score=d["winner_score"],
        text=result.text if result is not None else "",
        averages=d["averages"],
        scores=d["scores"],
        missing=_missing(d, has_result=result is not None),
        aggregator=d["aggregator"],
        timings=dict(timings),
        reason=reason,
        requested=requested,
        joined=len(snap.joined),
    )


def winner_answer(responses: Mapping[bytes, Response], result: Result | None) -> dict[str, Any]:
    """The winning Response's fields beyond its text, for the gateway (``ev.Result.answer``)."""
    response = responses.get(result.winner) if result and result.winner else None
    if response is None:
        return {}
    wire = response.to_wire()
    wire.pop("text")
    return wire


def format_result(evt: ev.Result | None) -> str:
    """The human-readable result: winner, score, text, the per-executor averages."""
    if evt is None:
        return "no result"
    if evt.winner is None:
        return f"{evt.task}: no winner (nothing could be ranked)"
    lines = [f"{evt.task}: winner {evt.winner[-6:]} score {evt.score:.2f} ({evt.aggregator})"]
    if evt.requested and evt.joined < evt.requested:
        lines.append(f"  warning: {short_of(evt.requested, evt.joined)}")
    for peer, avg in sorted(evt.averages.items(), key=lambda kv: -(kv[1] or -1)):
        lines.append(f"  {peer[-6:]}  {'-' if avg is None else f'{avg:.2f}'}")
    lines.append(evt.text)
    return "\n".join(lines)


def short_peer(text: str) -> str:
    """The last 6 characters of a base58 peer ID (as the console shows it), other text as is."""
    return text[-6:] if len(text) > 40 and text.startswith(("12D3", "Qm")) else text


def short_of(requested: int, joined: int) -> str:
    """The warning when fewer providers joined than ``pipe N`` asked for."""
    return (
        f"only {joined} of the {requested} requested providers joined "
        f"(the session ran with {joined}; more providers, or a longer --join-deadline)"
    )


def format_roles(snap: SessionSnapshot) -> str:
    """The answer to ``ack``: who executes, who verifies."""
    return (
        f"{snap.task}: {len(snap.executors)} executor(s) "
        f"{', '.join(short_id(p) for p in snap.executors)}; {len(snap.verifiers)} verifier(s) "
        f"{', '.join(short_id(p) for p in snap.verifiers)}"
    )
