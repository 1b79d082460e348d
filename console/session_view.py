"""One session as the console shows it: its last ``session`` event and its ``result``.

Both are the typed events of ``node.events`` (``Session``, ``Result``), built by
``node.sessions.views`` from the protocol's snapshot; nothing here guesses at shapes. Deadlines
arrive as wall-clock epoch ms (the engine converts from its monotonic clock), so the countdown
is ``deadline - now``. No Textual import.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from node import events as ev

#: The four stages of a session, in order (ARCHITECTURE §7); then the two ends.
STAGES: tuple[str, ...] = ("advertise", "execute", "verify", "finalize")
DONE = "done"
ABORTED = "aborted"


def short_id(peer_id: str | None) -> str:
    """The short display form of a base58 peer id: its last 6 characters."""
    if not peer_id:
        return "?"
    return peer_id[-6:]


@dataclass(frozen=True, slots=True)
class SessionView:
    """A session's last snapshot plus its result, once one arrived."""

    task: str
    snapshot: ev.Session
    result: ev.Result | None = None
    first_seen: float = 0.0

    @classmethod
    def of_result(cls, result: ev.Result, first_seen: float) -> SessionView:
        """A result for a session whose snapshots this console never saw."""
        snapshot = ev.Session(
            task=result.task,
            leader=result.leader,
            role="",
            stage=ABORTED if result.reason else DONE,
        )
        return cls(result.task, snapshot, result, first_seen)

    # -- where it is -------------------------------------------------------------------------

    @property
    def stage(self) -> str:
        """The machine's stage; once the result is in, ``done`` or ``aborted`` (a result with a
        reason is a session that ended without one)."""
        if self.result is not None:
            return ABORTED if self.result.reason else DONE
        return self.snapshot.stage

    @property
    def stage_index(self) -> int:
        """0..3 for the running stage, 4 when finished, -1 when aborted."""
        stage = self.stage
        if stage == DONE:
            return len(STAGES)
        if stage == ABORTED:
            return -1
        return STAGES.index(stage) if stage in STAGES else 0

    @property
    def over(self) -> bool:
        return self.stage in (DONE, ABORTED)

    def deadline_left_s(self, now_ms: float | None = None) -> float | None:
        """Seconds until the current stage's deadline (None when there is none or it is over)."""
        deadline = self.snapshot.stage_deadline_ms
        if self.over or deadline is None:
            return None
        now_ms = time.time() * 1000 if now_ms is None else now_ms
        return max(0.0, (deadline - now_ms) / 1000)

    # -- who and what ----------------------------------------------------------------------

    @property
    def leader(self) -> str:
        return self.snapshot.leader

    @property
    def role(self) -> str:
        return self.snapshot.role

    @property
    def prompt(self) -> str:
        return self.snapshot.prompt

    @property
    def joined(self) -> list[str]:
        return self.snapshot.joined

    @property
    def executors(self) -> list[str]:
        """The assigned executors (and any the result's matrix names)."""
        found = list(self.snapshot.executors)
        found += [e for e in self.scores if e not in found]
        return found

    @property
    def verifiers(self) -> list[str]:
        found = list(self.snapshot.verifiers)
        for row in self.scores.values():
            found += [v for v in row if v not in found]
        return found

    @property
    def responses(self) -> dict[str, str | None]:
        return self.snapshot.responses

    @property
    def scores(self) -> dict[str, dict[str, float | None]]:
        return self.result.scores if self.result is not None else self.snapshot.scores

    @property
    def averages(self) -> dict[str, float | None]:
        return self.result.averages if self.result is not None else self.snapshot.averages

    @property
    def missing(self) -> ev.Missing:
        return self.result.missing if self.result is not None else self.snapshot.missing

    @property
    def winner(self) -> str | None:
        return self.result.winner if self.result is not None else self.snapshot.winner

    @property
    def score(self) -> float | None:
        """The winner's score (from the result)."""
        return self.result.score if self.result is not None else None

    @property
    def reason(self) -> str:
        """Why the session ended without a result ("" otherwise)."""
        return self.result.reason if self.result is not None else ""

    @property
    def winning_text(self) -> str | None:
        if self.result is not None and self.result.text:
            return self.result.text
        winner = self.winner
        return self.responses.get(winner) if winner else None

    def answers_text(self) -> str:
        """The prompt, the winning answer, then every other answer with its average."""
        averages, winner = self.averages, self.winner

        def avg(peer: str | None) -> str:
            value = averages.get(peer or "")
            return f"{value:.2f}" if value is not None else "-"

        parts = [f"Prompt: {self.prompt}" if self.prompt else "", ""]
        parts += [f"Winner {short_id(winner)} (avg {avg(winner)}):", self.winning_text or "", ""]
        others = [e for e in self.executors if e != winner]
        if others:
            parts.append("Other answers:")
        for executor in others:
            text = self.responses.get(executor) or "(no answer received)"
            parts.append(f"- {short_id(executor)} (avg {avg(executor)}): {text}")
        return "\n".join(parts).strip()

    def is_missing(self, executor: str, verifier: str | None = None) -> bool:
        """Whether a whole executor row (no ``verifier``) or one cell is missing.

        An executor without a response or a verifier without any score is missing as soon as
        the engine says so; an empty cell of a responding executor is only pending until the
        session is over, then missing (never a 0.00).
        """
        missing = self.missing
        if executor in missing.executors:
            return True
        if verifier is None:
            return False
        if verifier in missing.verifiers:
            return True
        return self.over and verifier in missing.scores.get(executor, ())

    def counts(self) -> dict[str, int]:
        """joined, responses x/y and scores x/y, as the engine counted them."""
        c = self.snapshot.counts
        keys = ("joined", "responses", "responses_expected", "scores", "scores_expected")
        return {k: c.get(k, 0) for k in keys}
