"""What a session writes to the node's store, so ``rnet audit`` can check it later.

Every envelope sent or accepted (raw signed bytes), the session row (leader, role, prompt,
stage), the roles once assigned, and the ``result`` event. A write that fails is logged and the
session goes on: a full disk must not stop it; the audit will say what is missing.
Timestamps here are wall-clock (people read them).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from node.sessions.ports import wall_ms
from protocol.identity import peer_id_to_str

if TYPE_CHECKING:
    from node import events as ev
    from node.reputation import Book
    from node.sessions.live import LiveSession
    from node.store import Store
    from protocol.envelope import Envelope

logger = logging.getLogger(__name__)


class Transcript:
    """The engine's writes to its :class:`~node.store.Store` (``None``: nothing is kept)."""

    def __init__(self, store: Store | None) -> None:
        self.store = store
        # the node's reputation book (node.reputation.Book), set when it keeps one
        self.book: Book | None = None

    def has_session(self, task: str) -> bool:
        return self.store is not None and self.store.has_session(task)

    def recent_answers(self) -> list[tuple[str, str]]:
        """Recent ``(prompt, winning text)`` pairs from the store (canaries for other prompts)."""
        if self.store is None:
            return []
        try:
            return self.store.recent_answers()
        except Exception:
            logger.exception("store: recent answers not read")
            return []

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def session(self, live: LiveSession) -> None:
        if self.store is None:
            return
        m = live.machine
        try:
            self.store.upsert_session(
                live.task,
                leader=peer_id_to_str(m.leader),
                role=str(m.role),
                prompt=m.prompt,
                stage=str(m.stage),
                at_ms=wall_ms(),
            )
        except Exception:
            logger.exception("store: session %s not recorded", live.task)

    def roles(self, live: LiveSession) -> None:
        if self.store is None:
            return
        m = live.machine
        self.store.record_roles(
            live.task,
            [peer_id_to_str(p) for p in m.executors],
            [peer_id_to_str(p) for p in m.verifiers],
        )

    def envelope(self, env: Envelope, direction: str) -> None:
        if self.store is None:
            return
        try:
            self.store.record_envelope(
                task=env.task,
                kind=env.kind,
                sender=peer_id_to_str(env.sender),
                seq=env.seq,
                ts_ms=env.ts_ms,
                raw=env.raw,
                direction=direction,
                at_ms=wall_ms(),
            )
        except Exception:
            logger.exception("store: envelope of %s not recorded", env.task)

    def result(self, evt: ev.Result) -> None:
        if self.store is not None:
            self.store.record_result(evt.task, evt.to_dict(), at_ms=wall_ms())

    def count(self, task: str, me: bytes) -> dict[str, float]:
        """Count a finished session in the reputation book, from the envelopes stored for it
        (re-verified); the reputation of the peers it changed (empty: not counted)."""
        if self.book is None:
            return {}
        try:
            self.book.identify(me)
            return self.book.reputations(self.book.observe(task))
        except Exception:  # reputation must never take a session down with it
            logger.exception("reputation: session %s not counted", task)
            return {}
