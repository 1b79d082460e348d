"""What ``rnet pipe`` shows on a terminal while its session runs: one status line, redrawn in
place as the session moves (stage, joined, answers, scores), a new line per stage, then the
result. Only when both stdout and stderr are terminals and ``--json`` is off: piped output stays
the result alone (``--json``: one line per event), so scripts see what they always saw.
"""

from __future__ import annotations

from typing import TextIO

from node import events as ev
from node.sessions.views import short_peer

CLEAR_LINE = "\r\x1b[K"


class PipeProgress:
    """An event sink drawing the pipe's session on ``stream`` (stderr, a terminal)."""

    def __init__(self, stream: TextIO, requested: int) -> None:
        self.stream = stream
        self.requested = requested
        self._task: str | None = None
        self._stage = ""
        self._drawn = False  # a status line is on screen (no newline after it yet)

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.Session) and event.role == "leader":
            if self._task is None:
                self._task = event.task
            if event.task == self._task:
                self._draw(event)

    def _draw(self, s: ev.Session) -> None:
        if self._drawn and s.stage != self._stage:
            self._write("\n")  # the finished stage's line stays on screen
        self._stage = s.stage
        self._write(CLEAR_LINE + status_line(s, self.requested))
        self._drawn = True

    def done(self) -> None:
        """End the status line before the result (or the error) is printed."""
        if self._drawn:
            self._write("\n")
            self._drawn = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # the terminal went away: the session goes on


def status_line(s: ev.Session, requested: int) -> str:
    """``task-1a2b  execute  joined 3/3  answers 1/2  scores 0/2`` (+ averages once scored)."""
    c = s.counts
    parts = [f"{s.task}", f"{s.stage:<8}", f"joined {len(s.joined)}/{requested}"]
    if s.executors:
        parts.append(f"answers {c.get('responses', 0)}/{c.get('responses_expected', 0)}")
        parts.append(f"scores {c.get('scores', 0)}/{c.get('scores_expected', 0)}")
    scored = [(p, a) for p, a in s.averages.items() if a is not None]
    if scored:
        parts.append(" ".join(f"{short_peer(p)} {a:.2f}" for p, a in sorted(scored)))
    return "  ".join(parts)
