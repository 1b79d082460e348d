"""This provider's model slots (trio side): which sessions hold one, and the adverts waiting.

The rules are :mod:`protocol.capacity`'s; this module applies them to the engine's live
sessions. :class:`ProviderSlots` counts the slots in use, remembers the advertisements this node
could not join while full, and tells the engine which one to join when a slot frees.

Default capacity (``--slots``): a real Ollama model serves ``OLLAMA_NUM_PARALLEL`` requests at
once (1 unless set), a simulated one :data:`SIM_SLOTS`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container, Iterable, Mapping
from typing import TYPE_CHECKING

from protocol.capacity import GatheringAdverts, SlotUse, holds_slot, owes_work
from protocol.effects import Role, Stage
from protocol.session import ParticipantSession

if TYPE_CHECKING:
    from node.sessions.live import LiveSession
    from protocol.envelope import Envelope

logger = logging.getLogger(__name__)

SIM_SLOTS = 4
MAX_SLOTS = 256
# A session still gathering holds our slot this long at most: a session we joined from memory
# may have been assigned without us before our join arrived (we then never hear from it), and
# its slot must not sit idle for the whole join window. Joining beyond the slots after this is a
# small, bounded overcommit: the model calls themselves never exceed the slots (the driver's
# semaphore), an extra one waits for a slot within its deadline.
PENDING_HOLD_MS = 1_000


def default_slots(backend: str, environ: Mapping[str, str]) -> int:
    """The slots a backend offers when ``--slots`` is not given."""
    if backend == "sim":
        return SIM_SLOTS
    raw = (environ.get("OLLAMA_NUM_PARALLEL") or "").strip()
    try:
        value = int(raw)
    except ValueError:
        return 1
    return min(MAX_SLOTS, value) if value > 0 else 1


def session_slot(live: LiveSession, now_ms: int) -> tuple[bool, bool]:
    """Whether one of this node's sessions holds a model slot now, and whether it still owes
    model work (protocol.capacity: holds_slot, owes_work)."""
    machine = live.machine
    if live.is_leader or not isinstance(machine, ParticipantSession) or not machine.join:
        return False, False
    pending = machine.role == Role.PENDING and machine.stage == Stage.ADVERTISE
    if pending and now_ms - live.created_ms >= PENDING_HOLD_MS:
        return False, False
    return holds_slot(machine), owes_work(machine)


class ProviderSlots:
    """The slots of one provider and the advertisements waiting for one.

    ``announce`` is called with the new :class:`SlotUse` whenever it changes (presence).
    """

    def __init__(self, total: int, announce: Callable[[SlotUse], None] | None = None) -> None:
        if not 1 <= total <= MAX_SLOTS:
            raise ValueError(f"--slots must be within 1..{MAX_SLOTS}")
        self.total = total
        self.announce = announce
        self.waiting: GatheringAdverts[Envelope] = GatheringAdverts()
        self.last = SlotUse(total, 0)

    def use(self, sessions: Iterable[LiveSession], now_ms: int) -> SlotUse:
        """The slots in use now; announces a change."""
        used = owed = 0
        for live in sessions:
            holds, owes = session_slot(live, now_ms)
            used += holds
            owed += owes
        current = SlotUse(self.total, used, owed)
        if current != self.last:
            self.last = current
            if self.announce is not None:
                try:
                    self.announce(current)
                except Exception:
                    logger.exception("announcing the slots failed")
        return current

    def remember(self, env: Envelope, deadline_ms: int) -> None:
        """An advert this node could not join now: join it if a slot frees before the deadline."""
        self.waiting.remember(env.task, env.sender, deadline_ms, env)

    def next_waiting(self, now_ms: int, skip: Container[bytes] = ()) -> Envelope | None:
        """The remembered advert to join now (``skip``: leaders at their cap), or None."""
        return self.waiting.next(now_ms, skip)


def pending_by_leader(sessions: Iterable[LiveSession]) -> dict[bytes, int]:
    """Leader -> its sessions this node joined that are still gathering (no assignment yet):
    what an advert flood piles up (protocol/admission.py); an assigned session counts no more."""
    pending: dict[bytes, int] = {}
    for live in sessions:
        machine = live.machine
        if live.is_leader or live.finished or machine.role != Role.PENDING:
            continue
        pending[machine.leader] = pending.get(machine.leader, 0) + 1
    return pending
