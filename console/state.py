"""What the console knows about the node, reduced from runtime events. No Textual import.

The runtime emits event objects (``node.events``) whose ``to_dict()`` forms are in CONTRACT.md;
this module folds them, as plain dicts, into a ``ConsoleState``: peers, the two mesh views,
session snapshots and results, and a bounded log. Panes receive *copies* of these snapshots,
never live structures, so a burst of events costs one dict update each and one repaint per batch.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

#: The four stages of a session, in order (ARCHITECTURE §7).
STAGES: tuple[str, ...] = ("advertise", "execute", "verify", "finalize")
DONE_STAGES = frozenset({"done", "finalized", "complete", "completed", "result"})
ABORTED_STAGES = frozenset({"abort", "aborted", "failed", "cancelled", "empty"})

LOG_LIMIT = 2000


def short_id(peer_id: str | None) -> str:
    """The short display form of a base58 peer id: its last 6 characters (CONTRACT.md)."""
    if not peer_id:
        return "?"
    return str(peer_id)[-6:]


def as_dict(event: Any) -> dict[str, Any]:
    """An event object (with ``to_dict``) or an already plain dict, as a dict."""
    if isinstance(event, Mapping):
        return dict(event)
    to_dict = getattr(event, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    raise TypeError(f"not an event: {event!r}")


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line of the log pane."""

    ts: float
    level: str  # "debug" | "info" | "warning" | "error" | "command"
    source: str  # event name or logger
    text: str

    def matches(self, needle: str) -> bool:
        """Case-insensitive filter on level, source and text (the log pane's filter box)."""
        if not needle:
            return True
        needle = needle.lower()
        return needle in self.text.lower() or needle in self.source.lower() or needle == self.level


@dataclass(slots=True)
class Peer:
    """One row of the peers pane."""

    peer_id: str
    addr: str = ""
    rtt_ms: float | None = None
    model: str = ""
    backend: str = ""
    state: str = "connected"
    name: str = ""


@dataclass(frozen=True, slots=True)
class SessionView:
    """A session snapshot (``session`` event) plus its ``result`` if one arrived.

    Derived accessors tolerate missing fields so a partial snapshot still renders.
    """

    task: str
    data: Mapping[str, Any]
    result: Mapping[str, Any] | None = None
    first_seen: float = 0.0

    def get(self, key: str, default: Any = None) -> Any:
        if self.result is not None and key in self.result and key != "stage":
            return self.result[key]
        return self.data.get(key, default)

    @property
    def stage(self) -> str:
        if self.result is not None:
            return "done"
        return str(self.data.get("stage") or "advertise").lower()

    @property
    def stage_index(self) -> int:
        """0..3 for the running stage, 4 when finished, -1 when aborted."""
        stage = self.stage
        if stage in DONE_STAGES:
            return len(STAGES)
        if stage in ABORTED_STAGES:
            return -1
        for i, name in enumerate(STAGES):
            if stage.startswith(name[:3]):
                return i
        return 0

    @property
    def leader(self) -> str:
        return str(self.get("leader") or "")

    @property
    def role(self) -> str:
        return str(self.data.get("role") or "")

    @property
    def prompt(self) -> str:
        return str(self.data.get("prompt") or "")

    @property
    def executors(self) -> list[str]:
        found = list(self.get("executors") or [])
        for executor in self.scores:
            if executor not in found:
                found.append(executor)
        return found

    @property
    def verifiers(self) -> list[str]:
        found = list(self.get("verifiers") or [])
        for row in self.scores.values():
            for verifier in row:
                if verifier not in found:
                    found.append(verifier)
        return found

    @property
    def joined(self) -> list[str]:
        joined = self.data.get("joined") or []
        return list(joined) if not isinstance(joined, int) else []

    @property
    def responses(self) -> dict[str, str | None]:
        return dict(self.data.get("responses") or {})

    @property
    def scores(self) -> dict[str, dict[str, float | None]]:
        raw = self.get("scores") or {}
        return {str(e): dict(row or {}) for e, row in raw.items()}

    @property
    def averages(self) -> dict[str, float | None]:
        return dict(self.get("averages") or {})

    @property
    def winner(self) -> str | None:
        winner = self.get("winner")
        return str(winner) if winner else None

    @property
    def winning_text(self) -> str | None:
        if self.result is not None and self.result.get("text"):
            return str(self.result["text"])
        winner = self.winner
        if winner:
            return self.responses.get(winner)
        return None

    def answers_text(self) -> str:
        """The prompt, the winning answer, then every other answer with its average."""
        averages, winner = self.averages, self.winner

        def avg(peer: str | None) -> str:
            value = averages.get(peer or "")
            return f"{value:.2f}" if isinstance(value, int | float) else "-"

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
        """Whether a cell (or, without a verifier, a whole executor row) is marked missing.

        The sessions engine sends ``{"executors": [...], "verifiers": [...], "scores":
        {executor: [verifiers]}}``; lists of peers or pairs are read the same way. Empty cells
        (``scores``) count as missing only once the session is over: until then they are pending.
        """
        missing = self.get("missing") or {}
        if isinstance(missing, Mapping):
            if executor in (missing.get("executors") or ()):
                return True
            if verifier is None:
                return missing.get(executor) is True
            if verifier in (missing.get("verifiers") or ()):
                return True
            cells = missing.get("scores")
            cell = cells.get(executor) if isinstance(cells, Mapping) else missing.get(executor)
            if not cell:
                return False
            over = self.stage_index in (-1, len(STAGES))
            return (cell is True or verifier in cell) and (over or "scores" not in missing)
        if isinstance(missing, Iterable) and not isinstance(missing, str):
            for item in missing:
                if item == executor and verifier is None:
                    return True
                if verifier is not None and (
                    item == verifier or list(item) == [executor, verifier]
                ):
                    return True
        return False

    def counts(self) -> dict[str, int]:
        """joined, responses x/y and scores x/y; the snapshot's own ``counts`` win if present."""
        executors, verifiers = self.executors, self.verifiers
        responses = self.responses
        scores = self.scores
        raw_joined = self.data.get("joined")
        counts = {
            "joined": raw_joined if isinstance(raw_joined, int) else len(self.joined),
            "responses": sum(1 for e in executors if responses.get(e)),
            "responses_expected": len(executors),
            "scores": sum(1 for row in scores.values() for v in row.values() if v is not None),
            "scores_expected": len(executors) * len(verifiers),
        }
        own = self.data.get("counts")
        if isinstance(own, Mapping):
            counts.update({k: int(v) for k, v in own.items() if isinstance(v, int | float)})
        return counts

    def deadline_left_s(self, now_ms: float | None = None) -> float | None:
        """Seconds until the current stage's deadline (None when there is none or it is done).

        ``stage_deadline_ms`` is read as wall-clock epoch milliseconds when it looks like one,
        else as milliseconds remaining at the snapshot's arrival.
        """
        if self.stage_index in (-1, len(STAGES)):
            return None
        deadline = self.data.get("stage_deadline_ms")
        if not isinstance(deadline, int | float) or deadline <= 0:
            return None
        now_ms = time.time() * 1000 if now_ms is None else now_ms
        if deadline < 1e11:  # a duration, not a timestamp
            deadline = self.first_seen * 1000 + deadline
        return max(0.0, (deadline - now_ms) / 1000)


@dataclass
class ConsoleState:
    """Everything the panes show, folded from events by ``apply``."""

    peer_id: str = ""
    name: str = ""
    role: str = ""
    addrs: list[str] = field(default_factory=list)
    peers: dict[str, Peer] = field(default_factory=dict)
    mesh: dict[str, list[str]] = field(default_factory=dict)
    bootmesh: dict[str, list[str]] = field(default_factory=dict)
    sessions: dict[str, SessionView] = field(default_factory=dict)
    log: deque[LogEntry] = field(default_factory=lambda: deque(maxlen=LOG_LIMIT))
    events_seen: int = 0
    rejected: int = 0
    _slm_buffer: list[str] = field(default_factory=list)
    _new_log: list[LogEntry] = field(default_factory=list)

    # -- folding ---------------------------------------------------------------------------

    def apply(self, event: Any, now: float | None = None) -> set[str]:
        """Fold one event in; return which areas changed ("peers", "mesh", "sessions", ...)."""
        now = time.time() if now is None else now
        try:
            data = as_dict(event)
        except TypeError as exc:
            self._log(now, "error", "console", str(exc))
            return {"log"}
        self.events_seen += 1
        kind = str(data.get("event", "?"))
        handler = getattr(self, f"_on_{kind}", None)
        if handler is None:
            self._log(now, "info", kind, _compact(data))
            return {"log"}
        try:
            return handler(data, now) | {"log"}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # A malformed event is shown, never allowed to crash the UI.
            self._log(now, "error", kind, f"malformed event ({exc}): {_compact(data)}")
            return {"log"}

    def apply_all(self, events: Sequence[Any], now: float | None = None) -> set[str]:
        """Fold a batch in order; return the union of the areas changed.

        A session snapshot followed in the same batch by a newer snapshot of that task (no
        result between) is never on screen: it only counts and logs its stage change, without
        the full conversion (a burst brings hundreds of snapshots of one session).
        """
        superseded = _superseded_snapshots(events)
        dirty: set[str] = set()
        for i, event in enumerate(events):
            if i in superseded:
                dirty |= self._pass_snapshot(event, now)
            else:
                dirty |= self.apply(event, now)
        return dirty

    def _pass_snapshot(self, event: Any, now: float | None) -> set[str]:
        """A superseded snapshot: the stage-change log line of ``_on_session``, and a stand-in
        view (task, stage, leader) the next snapshot in the batch replaces."""
        now = time.time() if now is None else now
        self.events_seen += 1
        task = str(_field(event, "task"))
        data = {key: _field(event, key) for key in ("task", "stage", "leader")}
        old = self.sessions.get(task)
        view = SessionView(task, data, old.result if old else None, old.first_seen if old else now)
        self.sessions[task] = view
        if old is None or old.data.get("stage") != data["stage"]:
            self._log(
                now,
                "info",
                "session",
                f"session {task}: {view.stage} (leader {short_id(view.leader)})",
            )
        return {"sessions", "log"}

    def take_new_log(self) -> list[LogEntry]:
        """Log entries added since the last call (the log pane appends only these)."""
        new, self._new_log = self._new_log, []
        return new

    def note(self, text: str, level: str = "info", source: str = "console") -> None:
        """Add a console-side line (command echo, config problems) to the log."""
        self._log(time.time(), level, source, text)

    def _log(self, now: float, level: str, source: str, text: str) -> None:
        entry = LogEntry(now, level, source, text)
        self.log.append(entry)
        self._new_log.append(entry)
        if len(self._new_log) > LOG_LIMIT:
            del self._new_log[: len(self._new_log) - LOG_LIMIT]

    def _on_ready(self, d: dict[str, Any], now: float) -> set[str]:
        self.peer_id = str(d.get("peer_id") or "")
        self.role = str(d.get("role") or "")
        self.name = str(d.get("name") or "")
        self.addrs = [str(a) for a in d.get("addrs") or []]
        addrs = ", ".join(self.addrs) or "no address"
        self._log(
            now,
            "info",
            "ready",
            f"ready as {self.name or short_id(self.peer_id)} "
            f"({self.role}) {short_id(self.peer_id)} on {addrs}",
        )
        return {"identity"}

    def _peer(self, peer_id: str) -> Peer:
        peer = self.peers.get(peer_id)
        if peer is None:
            peer = self.peers[peer_id] = Peer(peer_id)
        return peer

    def _on_peer_joined(self, d: dict[str, Any], now: float) -> set[str]:
        peer = self._peer(str(d["peer_id"]))
        peer.addr = str(d.get("addr") or peer.addr)
        peer.state = "connected"
        self._log(now, "info", "peer_joined", f"peer joined {short_id(peer.peer_id)} {peer.addr}")
        return {"peers"}

    def _on_peer_left(self, d: dict[str, Any], now: float) -> set[str]:
        peer = self._peer(str(d["peer_id"]))
        peer.state = "lost"
        self._log(now, "warning", "peer_left", f"peer left {short_id(peer.peer_id)}")
        return {"peers"}

    def _on_peer_info(self, d: dict[str, Any], now: float) -> set[str]:
        peer = self._peer(str(d["peer_id"]))
        old_state = peer.state
        peer.model = str(d.get("model") or peer.model)
        peer.backend = str(d.get("backend") or peer.backend)
        peer.name = str(d.get("name") or peer.name)
        rtt = d.get("rtt_ms")
        peer.rtt_ms = float(rtt) if isinstance(rtt, int | float) else peer.rtt_ms
        peer.state = str(d.get("state") or peer.state)
        if peer.state != old_state:
            level = "warning" if peer.state == "lost" else "info"
            self._log(now, level, "peer_info", f"peer {short_id(peer.peer_id)} {peer.state}")
        return {"peers"}

    def _on_mesh(self, d: dict[str, Any], now: float) -> set[str]:
        self.mesh = _topics(d.get("topics"))
        self._log(now, "debug", "mesh", "local mesh: " + _topics_summary(self.mesh))
        return {"mesh"}

    def _on_bootmesh(self, d: dict[str, Any], now: float) -> set[str]:
        self.bootmesh = _topics(d.get("topics"))
        self._log(now, "debug", "bootmesh", "bootstrap mesh: " + _topics_summary(self.bootmesh))
        return {"mesh"}

    def _on_message(self, d: dict[str, Any], now: float) -> set[str]:
        sender = short_id(d.get("sender"))
        self._log(
            now,
            "info",
            "message",
            f"[{d.get('topic', '?')}] {sender} {d.get('kind', '')}: {d.get('text', '')}",
        )
        return set()

    def _on_command_output(self, d: dict[str, Any], now: float) -> set[str]:
        ok = bool(d.get("ok", True))
        text = str(d.get("text") or ("ok" if ok else "failed"))
        self._log(now, "info" if ok else "error", str(d.get("command") or "command"), text)
        return set()

    def _on_error(self, d: dict[str, Any], now: float) -> set[str]:
        self._log(now, "error", str(d.get("source") or "error"), str(d.get("message", "")))
        return set()

    def _on_rejected(self, d: dict[str, Any], now: float) -> set[str]:
        self.rejected += 1
        detail = f" ({d['detail']})" if d.get("detail") else ""
        self._log(
            now,
            "warning",
            "rejected",
            f"rejected {d.get('reason', '?')} from {short_id(d.get('sender'))} "
            f"on {d.get('topic', '?')}{detail}",
        )
        return {"identity"}

    def _on_log(self, d: dict[str, Any], now: float) -> set[str]:
        level = str(d.get("level") or "info").lower()
        level = {"warn": "warning", "critical": "error", "exception": "error"}.get(level, level)
        self._log(now, level, str(d.get("logger") or "log"), str(d.get("message", "")))
        return set()

    def _on_slm_chunk(self, d: dict[str, Any], now: float) -> set[str]:
        # The whole answer arrives as the `slm` command's output (one log line); the chunks
        # only feed a live preview, cleared when the stream ends.
        if d.get("done"):
            self._slm_buffer = []
        else:
            self._slm_buffer.append(str(d.get("text") or ""))
        return {"slm"}

    @property
    def slm_live(self) -> str:
        """The answer streaming in right now ("" when none)."""
        return "".join(self._slm_buffer)

    def _on_session(self, d: dict[str, Any], now: float) -> set[str]:
        task = str(d["task"])
        old = self.sessions.get(task)
        view = SessionView(task, d, old.result if old else None, old.first_seen if old else now)
        self.sessions[task] = view
        if old is None or old.data.get("stage") != d.get("stage"):
            self._log(
                now,
                "info",
                "session",
                f"session {task}: {view.stage} (leader {short_id(view.leader)})",
            )
        return {"sessions"}

    def _on_result(self, d: dict[str, Any], now: float) -> set[str]:
        task = str(d["task"])
        old = self.sessions.get(task)
        data = old.data if old else {"task": task, "leader": d.get("leader"), "stage": "done"}
        self.sessions[task] = SessionView(task, data, d, old.first_seen if old else now)
        winner = d.get("winner")
        if winner:
            score = d.get("score")
            score_text = f" score {score:.2f}" if isinstance(score, int | float) else ""
            self._log(
                now, "info", "result", f"result {task}: winner {short_id(winner)}{score_text}"
            )
        else:
            self._log(now, "warning", "result", f"result {task}: no winner")
        return {"sessions"}

    # -- views for panes ---------------------------------------------------------------------

    def peers_snapshot(self) -> tuple[Peer, ...]:
        return tuple(
            Peer(p.peer_id, p.addr, p.rtt_ms, p.model, p.backend, p.state, p.name)
            for p in self.peers.values()
        )

    def sessions_snapshot(self) -> tuple[SessionView, ...]:
        """Sessions in the order they were first seen."""
        return tuple(sorted(self.sessions.values(), key=lambda s: s.first_seen))


def _field(event: Any, key: str) -> Any:
    """One top-level field of an event object or dict, without converting the whole event."""
    if isinstance(event, Mapping):
        return event.get(key)
    return getattr(event, key, None)


def _superseded_snapshots(events: Sequence[Any]) -> set[int]:
    """Indices of session snapshots whose task's next event in ``events`` is another snapshot."""
    superseded: set[int] = set()
    followed: set[str] = set()  # tasks whose next event (looking back from the end) is a snapshot
    for i in range(len(events) - 1, -1, -1):
        event = events[i]
        kind = _field(event, "event")
        if kind not in ("session", "result"):
            continue
        task = _field(event, "task")
        if not isinstance(task, str):
            continue  # malformed: the full fold reports it
        if kind == "result":
            followed.discard(task)
        elif task in followed:
            superseded.add(i)
        else:
            followed.add(task)
    return superseded


def _topics(raw: Any) -> dict[str, list[str]]:
    if not isinstance(raw, Mapping):
        raise TypeError("topics must be a mapping")
    return {str(topic): [str(p) for p in peers or []] for topic, peers in raw.items()}


def _topics_summary(topics: Mapping[str, list[str]]) -> str:
    if not topics:
        return "no topics"
    return ", ".join(f"{t}({len(p)})" for t, p in sorted(topics.items()))


def _compact(data: Mapping[str, Any]) -> str:
    text = json.dumps(data, default=str, separators=(",", ":"))
    return text if len(text) <= 300 else text[:297] + "..."
