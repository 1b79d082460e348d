"""Counting and reporting dropped input without letting a hostile peer flood the reports.

Every rejected or dropped message is counted (:class:`RejectCounter`: total, per reason, per
sender). What is *shown* (``rejected`` events: the console's log and peers pane, ``--json``
lines) is bounded: the first rejection from a sender in an interval is reported at once; the
rest of that interval become one summary event per sender (``repeats`` = how many more,
``reasons`` = their counts per reason) when the interval ends. 10,000 garbage messages from one
peer are 10,000 in the counters and a handful of lines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from node import events as ev

__all__ = ["REPORT_INTERVAL_S", "RejectCounter", "RejectReporter"]

REPORT_INTERVAL_S = 5.0


@dataclass
class RejectCounter:
    """Rejected messages: total, per reason, per sender (bounded)."""

    total: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    by_sender: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str, sender: str = "") -> int:
        self.total += 1
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        if len(self.by_sender) < 10_000 or sender in self.by_sender:
            self.by_sender[sender] = self.by_sender.get(sender, 0) + 1
        return self.total

    def from_sender(self, sender: str) -> int:
        return self.by_sender.get(sender, 0)


@dataclass
class _Pending:
    reported_at: float
    repeats: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    topic: str = ""
    detail: str = ""


class RejectReporter:
    """Turns rejections into at most one event per sender per ``interval`` (module docstring)."""

    def __init__(
        self,
        counter: RejectCounter,
        emit: Callable[[ev.Event], None],
        *,
        interval: float = REPORT_INTERVAL_S,
        max_senders: int = 10_000,
    ) -> None:
        self.counter = counter
        self._emit = emit
        self.interval = interval
        self._max_senders = max_senders
        self._pending: dict[str, _Pending] = {}

    def note(
        self, reason: str, sender: str, topic: str, detail: str, now: float
    ) -> ev.Rejected | None:
        """Count one rejection; returns the event emitted for it (None: folded into a summary)."""
        total = self.counter.add(reason, sender)
        pending = self._pending.get(sender)
        if pending is None or now - pending.reported_at >= self.interval:
            if pending is not None and pending.repeats:
                self._emit_summary(sender, pending)
            if pending is None and len(self._pending) >= self._max_senders:
                self.flush(now, force=True)
            self._pending[sender] = _Pending(reported_at=now)
            event = ev.Rejected(
                reason=reason, sender=sender, topic=topic, detail=detail, count=total
            )
            self._emit(event)
            return event
        pending.repeats += 1
        pending.reasons[reason] = pending.reasons.get(reason, 0) + 1
        pending.topic, pending.detail = topic, detail
        return None

    def flush(self, now: float, *, force: bool = False) -> int:
        """Emit the summaries whose interval is over (all with ``force``); returns how many."""
        sent = 0
        for sender, pending in list(self._pending.items()):
            if force or now - pending.reported_at >= self.interval:
                del self._pending[sender]
                if pending.repeats:
                    self._emit_summary(sender, pending)
                    sent += 1
        return sent

    def _emit_summary(self, sender: str, pending: _Pending) -> None:
        reason = max(pending.reasons, key=lambda r: pending.reasons[r])
        self._emit(
            ev.Rejected(
                reason=reason,
                sender=sender,
                topic=pending.topic,
                detail=f"{pending.repeats} more in {self.interval:g} s: "
                + ", ".join(f"{r} {n}" for r, n in sorted(pending.reasons.items())),
                count=self.counter.total,
                repeats=pending.repeats,
                reasons=dict(pending.reasons),
            )
        )
