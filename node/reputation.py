"""The node's reputation book: :class:`protocol.reputation.Ledger` fed from the signed
transcripts in the node's store, kept in the store's ``reputation`` tables.

After a session ends (its result, and the reveals before it, are stored), :meth:`Book.observe`
re-verifies the session's envelopes (:func:`protocol.transcript.verify_transcript`: signatures,
commitments, the score matrix replayed from the signed batches) and counts it once; a session
whose audit fails teaches nothing. The ledger is then saved peer by peer, so a restarted node
carries on where it stopped, and ``rnet peers`` reads it without starting a node. Times are
wall-clock milliseconds: standing decays across restarts too.

The leader asks :meth:`Book.verifier_weights` (the ``robust`` tally) and
:meth:`Book.selection_weights` (who judges) when it opens a session; ``node/assemble.py`` hands
the book to the session engine and registers the ``rep`` command. Everything here runs on the
trio side, where sessions end; the command crosses to it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from node.commands.interpreter import CommandError, Interpreter, usage_error
from node.store import ReputationRow, Store

if TYPE_CHECKING:
    from node.runtime.node import NodeRuntime
from protocol.errors import ProtocolError
from protocol.identity import peer_id_from_str, peer_id_to_str
from protocol.reputation import HistoryEntry, Ledger, PeerRecord, ReputationParams, Standing
from protocol.reputation import Transcript as LedgerTranscript
from protocol.transcript import verify_transcript

__all__ = ["REP_USAGE", "Book", "PeerStanding", "register_reputation_command", "render", "wall_ms"]

logger = logging.getLogger(__name__)


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class PeerStanding:
    """One peer as ``rnet peers`` and the console show it (base58 peer ID)."""

    peer: str
    standing: Standing
    history: tuple[HistoryEntry, ...]

    def to_dict(self, *, history: bool = False) -> dict[str, object]:
        out: dict[str, object] = {"peer": self.peer, **self.standing.to_dict()}
        if history:
            out["history"] = [_entry_dict(e) for e in self.history]
        return out


def _entry_dict(e: HistoryEntry) -> dict[str, object]:
    return {"at_ms": e.at_ms, "task": e.task, "role": e.role, "value": e.value, "weight": e.weight}


def _to_row(record: PeerRecord) -> ReputationRow:
    return ReputationRow(
        peer=peer_id_to_str(record.peer),
        first_seen_ms=record.first_seen_ms,
        updated_ms=record.updated_ms,
        verifier_good=record.verifier_good,
        verifier_n=record.verifier_n,
        executor_good=record.executor_good,
        executor_n=record.executor_n,
        sessions=record.sessions,
        history=[_entry_dict(e) for e in record.history],
    )


def _from_row(row: ReputationRow) -> PeerRecord | None:
    try:
        peer = peer_id_from_str(row.peer)
        history = [
            HistoryEntry(
                int(h["at_ms"]),
                str(h["task"]),
                str(h["role"]),
                float(h["value"]),
                float(h["weight"]),
            )
            for h in row.history
        ]
    except (ProtocolError, ValueError, KeyError, TypeError) as exc:
        logger.warning("reputation row for %s unreadable (%s): skipped", row.peer, exc)
        return None
    record = PeerRecord(
        peer,
        row.first_seen_ms,
        row.updated_ms,
        row.verifier_good,
        row.verifier_n,
        row.executor_good,
        row.executor_n,
        row.sessions,
    )
    record.history.extend(history)
    return record


class Book:
    """This node's ledger, loaded from and saved to its store (``store=None``: memory only).
    ``me``: this node's peer ID (its own sessions count in full); ``None`` to only read."""

    def __init__(
        self,
        store: Store | None,
        me: bytes | None,
        *,
        params: ReputationParams | None = None,
        trusted: Collection[bytes] = (),
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self.store = store
        self.clock = clock
        self.ledger = Ledger(params, me=me, trusted=trusted)
        if store is not None:
            records = [r for r in map(_from_row, store.reputation()) if r is not None]
            self.ledger.restore(records, store.reputation_tasks())

    def identify(self, me: bytes) -> None:
        """This node's peer ID, once the runtime has it (its own sessions count in full)."""
        self.ledger.me = me

    def observe(self, task: str) -> list[bytes]:
        """Count a finished session from the envelopes stored for it; the peers it changed
        (none: not counted, seen before or its audit failed)."""
        if self.store is None or self.ledger.seen(task):
            return []
        raws = [e.raw for e in self.store.envelopes(task)]
        report = verify_transcript(raws, task)
        now = self.clock()
        transcript = LedgerTranscript.from_audit(report, now)
        if transcript is None:
            logger.info("reputation: session %s not counted (%s)", task, report.problems[:1])
            return []
        return self.count(transcript)

    def count(self, transcript: LedgerTranscript) -> list[bytes]:
        """Count one verified transcript and save what changed; the peers it changed."""
        before = set(self.ledger.peers())
        earned = self.ledger.record(transcript)
        if not earned:
            return []
        if self.store is not None:
            after = set(self.ledger.peers())
            rows = [_to_row(r) for r in self.ledger.records() if r.peer in earned]
            dropped = [peer_id_to_str(p) for p in before - after]
            self.store.save_reputation(transcript.task, transcript.at_ms, rows, dropped)
        return sorted(earned)

    # -- what the leader, the console and ``rnet peers`` ask -----------------------------------
    def verifier_weights(self) -> dict[bytes, float]:
        """Every known peer's tally weight now (a stranger counts at the tally's floor)."""
        return self.ledger.verifier_weights(self.ledger.peers(), self.clock())

    def selection_weights(self) -> dict[bytes, float]:
        """Every known peer's weight for a judging seat now (a stranger: the draw's floor)."""
        return self.ledger.selection_weights(self.ledger.peers(), self.clock())

    def standing(self, peer: bytes) -> PeerStanding:
        standing = self.ledger.standing(peer, self.clock())
        return PeerStanding(peer_id_to_str(peer), standing, self.ledger.history(peer))

    def standings(self) -> list[PeerStanding]:
        """Every known peer, best reputation first (ties: the peer ID)."""
        out = [self.standing(p) for p in self.ledger.peers()]
        return sorted(out, key=lambda s: (-s.standing.reputation, s.peer))

    def reputations(self, peers: list[bytes]) -> dict[str, float]:
        """``peers``' reputation now, by base58 ID (the console's ``reputation`` event)."""
        now = self.clock()
        return {peer_id_to_str(p): self.ledger.reputation(p, now) for p in peers}


def _when(ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ms / 1000)) if ms else "-"


def render(standings: list[PeerStanding], *, history: bool = False) -> list[str]:
    """A text table of standings (``rnet peers``, the ``rep`` command); with each peer's
    history under it when ``history``."""
    if not standings:
        return ["no reputation yet (no finished session counted)"]
    lines = [
        f"{'peer':<14} {'reputation':>10} {'judge':>6} {'answers':>7} {'evidence':>8} "
        f"{'sessions':>8}  last seen"
    ]
    for s in standings:
        st = s.standing
        lines.append(
            f"{s.peer[-12:]:<14} {st.reputation:>10.2f} {st.verifier:>6.2f} {st.executor:>7.2f} "
            f"{st.evidence:>8.1f} {st.sessions:>8}  {_when(st.last_seen_ms)}"
        )
        if history:
            lines += [
                f"    {_when(h.at_ms)}  {h.task[:24]:<24} {h.role:<8} earned {h.value:.2f}"
                f" (session weight {h.weight:.2f})"
                for h in s.history
            ]
    return lines


REP_USAGE = "rep [peer]"


def register_reputation_command(interpreter: Interpreter, book: Book) -> None:
    """``rep`` (every peer this node has a standing for) and ``rep <peer>`` (the end of its ID
    is enough: its standing and history) on the node's command line."""

    async def rep(runtime: NodeRuntime, args: list[str]) -> str:
        if len(args) > 1:
            raise usage_error(REP_USAGE)

        async def read() -> list[PeerStanding]:  # on the trio side, where sessions write it
            return book.standings()

        standings = await runtime.call(read)
        if args:
            standings = [s for s in standings if s.peer.endswith(args[0])]
            if not standings:
                raise CommandError(f"no reputation for a peer ending in {args[0]!r}")
        return "\n".join(render(standings, history=bool(args)))

    interpreter.register(
        "rep", REP_USAGE, "peers' reputation here, or one peer's history (README: Trust)", rep
    )
