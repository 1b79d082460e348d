"""What the console knows about the node, folded from runtime events. No Textual import.

The runtime emits the typed events of ``node.events``; a scripted link or a test may hand their
``to_dict()`` form instead, which is turned back into the event (``event_from_dict``) at the
door. ``ConsoleState`` folds them into peers, the two mesh views, sessions
(:class:`~console.session_view.SessionView`: the typed snapshot and result) and a bounded log.
Panes receive *copies* of these snapshots, never live structures.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from console.session_view import STAGES, SessionView, short_id
from node import events as ev

logger = logging.getLogger(__name__)

__all__ = ["STAGES", "ConsoleState", "LogEntry", "Peer", "SessionView", "as_event", "short_id"]

LOG_LIMIT = 2000


def as_event(raw: object) -> ev.Event | None:
    """An event object, or its ``to_dict()`` form rebuilt; ``None`` for an unknown event type.
    KeyError/TypeError/ValueError when the data is not an event."""
    if isinstance(raw, ev.Event):
        return raw
    if not isinstance(raw, Mapping):
        raise TypeError(f"not an event: {raw!r}")
    if raw.get("event") not in ev.EVENT_TYPES:
        return None
    return ev.event_from_dict(raw)


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
    reputation: float | None = None  # in this node's ledger (README: Trust)
    status: str = ""  # why it takes no session role ("" = it can)
    slots: int = 0  # model slots it offers (0: none announced) and how many are in use
    slots_used: int = 0
    rejected: int = 0  # messages this node rejected or dropped from the peer


@dataclass
class ConsoleState:
    """Everything the panes show, folded from events by ``apply``."""

    peer_id: str = ""
    name: str = ""
    role: str = ""
    addrs: list[str] = field(default_factory=list)
    peers: dict[str, Peer] = field(default_factory=dict)
    reputation: dict[str, float] = field(default_factory=dict)  # peer id -> 0..1
    # this node's gateway (rnet node --serve): sessions running, requests queued, at once
    gateway_queue: tuple[int, int, int] | None = None
    mesh: dict[str, list[str]] = field(default_factory=dict)
    bootmesh: dict[str, list[str]] = field(default_factory=dict)
    sessions: dict[str, SessionView] = field(default_factory=dict)
    log: deque[LogEntry] = field(default_factory=lambda: deque(maxlen=LOG_LIMIT))
    events_seen: int = 0
    rejected: int = 0
    _slm_buffer: list[str] = field(default_factory=list)
    _new_log: list[LogEntry] = field(default_factory=list)

    # -- folding ---------------------------------------------------------------------------

    def apply(self, raw: object, now: float | None = None) -> set[str]:
        """Fold one event in; return which areas changed ("peers", "mesh", "sessions", ...)."""
        now = time.time() if now is None else now
        try:
            event = as_event(raw)
        except (KeyError, TypeError, ValueError) as exc:
            self._log(now, "error", "console", f"malformed event ({exc}): {_compact(raw)}")
            return {"log"}
        self.events_seen += 1
        handler = getattr(self, f"_on_{event.event}", None) if event is not None else None
        if event is None or handler is None:  # an event type this console does not show
            kind = event.event if event is not None else str(_mapping(raw).get("event", "?"))
            self._log(now, "info", kind, _compact(raw))
            return {"log"}
        try:
            return handler(event, now) | {"log"}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # A malformed event is shown, never allowed to crash the UI.
            self._log(now, "error", event.event, f"malformed event ({exc}): {_compact(raw)}")
            return {"log"}

    def apply_all(self, events: Sequence[object], now: float | None = None) -> set[str]:
        """Fold a batch in order; return the union of the areas changed. (Events are typed
        objects: folding a snapshot is one reference kept, so a burst costs little.)"""
        dirty: set[str] = set()
        for event in events:
            dirty |= self.apply(event, now)
        return dirty

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

    def _on_ready(self, e: ev.Ready, now: float) -> set[str]:
        self.peer_id, self.role, self.name = e.peer_id, e.role, e.name
        self.addrs = [str(a) for a in e.addrs]
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
            peer = self.peers[peer_id] = Peer(peer_id, reputation=self.reputation.get(peer_id))
        return peer

    def _on_peer_joined(self, e: ev.PeerJoined, now: float) -> set[str]:
        peer = self._peer(e.peer_id)
        peer.addr = e.addr or peer.addr
        peer.state = "connected"
        self._log(now, "info", "peer_joined", f"peer joined {short_id(peer.peer_id)} {peer.addr}")
        return {"peers"}

    def _on_peer_left(self, e: ev.PeerLeft, now: float) -> set[str]:
        peer = self._peer(e.peer_id)
        peer.state = "lost"
        self._log(now, "warning", "peer_left", f"peer left {short_id(peer.peer_id)}")
        return {"peers"}

    def _on_peer_info(self, e: ev.PeerInfo, now: float) -> set[str]:
        peer = self._peer(e.peer_id)
        old_state = peer.state
        peer.model = e.model or peer.model
        peer.backend = e.backend or peer.backend
        peer.name = e.name or peer.name
        peer.rtt_ms = float(e.rtt_ms) if e.rtt_ms is not None else peer.rtt_ms
        peer.state = e.state or peer.state
        if e.slots:
            peer.slots, peer.slots_used = e.slots, e.slots_used
        if e.status != peer.status:
            if e.status:
                self._log(now, "warning", "peer_info", f"peer {short_id(peer.peer_id)}: {e.status}")
            elif peer.status:
                self._log(now, "info", "peer_info", f"peer {short_id(peer.peer_id)}: model back")
            peer.status = e.status
        if peer.state != old_state:
            level = "warning" if peer.state == "lost" else "info"
            self._log(now, level, "peer_info", f"peer {short_id(peer.peer_id)} {peer.state}")
        return {"peers"}

    def _on_reputation(self, e: ev.Reputation, now: float) -> set[str]:
        for peer_id, value in e.peers.items():
            self.reputation[peer_id] = float(value)
            if peer_id in self.peers:
                self.peers[peer_id].reputation = float(value)
        self._log(now, "debug", "reputation", f"reputation of {len(e.peers)} peers updated")
        return {"peers"}

    def _on_gateway_queue(self, e: ev.GatewayQueue, now: float) -> set[str]:
        self.gateway_queue = (e.running, e.waiting, e.capacity)
        return {"peers"}

    def _on_mesh(self, e: ev.Mesh, now: float) -> set[str]:
        self.mesh = _topics(e.topics)
        self._log(now, "debug", "mesh", "local mesh: " + _topics_summary(self.mesh))
        return {"mesh"}

    def _on_bootmesh(self, e: ev.Bootmesh, now: float) -> set[str]:
        self.bootmesh = _topics(e.topics)
        self._log(now, "debug", "bootmesh", "bootstrap mesh: " + _topics_summary(self.bootmesh))
        return {"mesh"}

    def _on_message(self, e: ev.Message, now: float) -> set[str]:
        text = f"[{e.topic}] {short_id(e.sender)} {e.kind}: {e.text}"
        self._log(now, "info", "message", text)
        return set()

    def _on_command_output(self, e: ev.CommandOutput, now: float) -> set[str]:
        text = e.text or ("ok" if e.ok else "failed")
        self._log(now, "info" if e.ok else "error", e.command or "command", text)
        return set()

    def _on_error(self, e: ev.Error, now: float) -> set[str]:
        self._log(now, "error", e.source or "error", e.message)
        return set()

    def _on_rejected(self, e: ev.Rejected, now: float) -> set[str]:
        # one event per sender per interval: a summary line stands for the `repeats` messages
        # that were not shown one by one
        n = e.repeats if e.repeats > 0 else 1
        self.rejected += n
        changed = {"identity"}
        if e.sender in self.peers:
            self.peers[e.sender].rejected += n
            changed.add("peers")
        detail = f" ({e.detail})" if e.detail else ""
        self._log(
            now,
            "warning",
            "rejected",
            f"rejected {e.reason} from {short_id(e.sender)} on {e.topic}{detail}",
        )
        return changed

    def _on_log(self, e: ev.Log, now: float) -> set[str]:
        level = (e.level or "info").lower()
        level = {"warn": "warning", "critical": "error", "exception": "error"}.get(level, level)
        self._log(now, level, e.logger or "log", e.message)
        return set()

    def _on_slm_chunk(self, e: ev.SlmChunk, now: float) -> set[str]:
        # The whole answer arrives as the `slm` command's output (one log line); the chunks
        # only feed a live preview, cleared when the stream ends.
        if e.done:
            self._slm_buffer = []
        else:
            self._slm_buffer.append(e.text)
        return {"slm"}

    @property
    def slm_live(self) -> str:
        """The answer streaming in right now ("" when none)."""
        return "".join(self._slm_buffer)

    def _on_session(self, e: ev.Session, now: float) -> set[str]:
        old = self.sessions.get(e.task)
        view = SessionView(e.task, e, old.result if old else None, old.first_seen if old else now)
        self.sessions[e.task] = view
        if old is None or old.snapshot.stage != e.stage:
            self._log(
                now,
                "info",
                "session",
                f"session {e.task}: {view.stage} (leader {short_id(view.leader)})",
            )
        return {"sessions"}

    def _on_result(self, e: ev.Result, now: float) -> set[str]:
        old = self.sessions.get(e.task)
        if old is None:
            self.sessions[e.task] = SessionView.of_result(e, now)
        else:
            self.sessions[e.task] = SessionView(e.task, old.snapshot, e, old.first_seen)
        if e.winner:
            score = f" score {e.score:.2f}" if e.score is not None else ""
            self._log(now, "info", "result", f"result {e.task}: winner {short_id(e.winner)}{score}")
        else:
            self._log(now, "warning", "result", f"result {e.task}: no winner")
        return {"sessions"}

    # -- views for panes ---------------------------------------------------------------------

    def peers_snapshot(self) -> tuple[Peer, ...]:
        return tuple(replace(p) for p in self.peers.values())

    def sessions_snapshot(self) -> tuple[SessionView, ...]:
        """Sessions in the order they were first seen."""
        return tuple(sorted(self.sessions.values(), key=lambda s: s.first_seen))


def _mapping(raw: object) -> Mapping[str, object]:
    assert isinstance(raw, Mapping)
    return raw


def _topics(raw: object) -> dict[str, list[str]]:
    if not isinstance(raw, Mapping):
        raise TypeError("topics must be a mapping")
    return {str(topic): [str(p) for p in peers or []] for topic, peers in raw.items()}


def _topics_summary(topics: Mapping[str, list[str]]) -> str:
    if not topics:
        return "no topics"
    return ", ".join(f"{t}({len(p)})" for t, p in sorted(topics.items()))


def _compact(data: object) -> str:
    text = json.dumps(data, default=str, separators=(",", ":"))
    return text if len(text) <= 300 else text[:297] + "..."
