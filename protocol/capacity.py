"""A provider's capacity: model slots, when a session holds one, and which advert gets the next.

Theory of operation
-------------------
A provider offers ``slots`` model slots (``--slots``; 1 for a real Ollama model unless
``OLLAMA_NUM_PARALLEL`` says more). A session it joined holds one of them only while this node
still has model work to do in it (:func:`holds_slot`): while the session gathers joins (it may
be picked as an executor, which answers at once), while it is an executor that has not answered
yet, while it is a verifier judging. A verifier waiting for the answers to judge holds none: the
executors are answering meanwhile, and holding a slot for that wait would cap the swarm at one
session per N slots whatever the model could do. A participant the assignment left out, an
executor that answered, a verifier that has judged everything, a finished session: no slot. So a
slot is busy for about one answer or one judgement, not for the whole session. Joining is
optimistic, calling the model is not: model calls at once never exceed the slots (the node
queues a judgement that finds every slot busy, within its deadline). How far ahead it may
promise is bounded too: a provider joins only while the sessions that still owe work from it
(:func:`owes_work`: gathering, answering, judging, or a verifier waiting for answers) number
under :data:`PROMISE_FACTOR` x its slots, so a judgement waits behind at most about one other
model call per slot (with one slot and a real model, one generation), not behind a queue built
by many leaders at once.

A provider whose slots are all held does not join; it remembers the advertisement until its join
deadline (:class:`GatheringAdverts`). When a slot frees, it joins one of the remembered sessions:
the leader served longest ago (never served first), that leader's oldest advert first, skipping
leaders that already have as many sessions gathering here as the join policy allows
(:mod:`protocol.admission`): their adverts wait, they are not dropped. Under sustained load from
several leaders each therefore gets slots in turn, whatever the rate it advertises at: no leader
starves (ARCHITECTURE §11, "Capacity is slots, held only while used"). A full memory drops the
oldest advert of the leader with the most remembered, so a flooding leader evicts only its own.

:func:`peak_slots` is what one session holds at its busiest, for a leader (the gateway) that
sizes how many sessions to run at once from the slots its providers announce.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Collection, Container
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from protocol.effects import Role, Stage

__all__ = [
    "MAX_REMEMBERED",
    "PROMISE_FACTOR",
    "GatheringAdverts",
    "ModelWork",
    "SlotUse",
    "holds_slot",
    "owes_work",
    "peak_slots",
]

# Adverts a full provider remembers (oldest dropped first): a flood cannot grow its memory.
MAX_REMEMBERED = 256
# Leaders whose last turn is remembered (the longest-ago forgotten first).
MAX_LEADERS_SERVED = 1024
# Sessions that still owe model work from a provider, per slot, beyond which it does not join.
PROMISE_FACTOR = 2

T = TypeVar("T")


class ModelWork(Protocol):
    """What the slot rules read of a participant's session (a
    :class:`~protocol.session.ParticipantSession` is one): ``judging`` = its running judgements."""

    @property
    def finished(self) -> bool: ...
    @property
    def stage(self) -> Stage: ...
    @property
    def role(self) -> Role: ...
    @property
    def generated(self) -> bool: ...
    @property
    def judging(self) -> Collection[str]: ...


def holds_slot(s: ModelWork) -> bool:
    """Whether a session this node joined holds one of its model slots now (see above)."""
    if s.finished or s.role == Role.OBSERVER:
        return False
    if s.role == Role.PENDING:
        return s.stage == Stage.ADVERTISE
    if s.role == Role.EXECUTOR:
        return not s.generated
    if s.role == Role.VERIFIER:
        return bool(s.judging)  # waiting for the answers holds nothing (see above)
    return False


def owes_work(s: ModelWork) -> bool:
    """Whether a session this node joined may still ask its model for something: what
    :func:`holds_slot` says, plus a verifier whose answers to judge may still come."""
    waiting = s.role == Role.VERIFIER and s.stage in (Stage.ADVERTISE, Stage.EXECUTE)
    return not s.finished and (waiting or holds_slot(s))


def peak_slots(providers: int, executors: int = 0) -> int:
    """The most model slots one session of ``providers`` participants holds at once.

    Executors answer first (one slot each), then verifiers judge (one slot each): the peak is
    the larger group. ``executors`` > 0 is a fixed executor count (the rest verify); 0 is the
    balanced split, half the joiners (rounded down) answering.
    """
    if providers < 2:
        return max(1, providers)
    answering = min(executors, providers - 1) if executors > 0 else providers // 2
    return max(answering, providers - answering)


@dataclass(frozen=True, slots=True)
class SlotUse:
    """A provider's slots as it announces them (presence) and shows them (console).

    ``owed``: sessions that still owe model work from it (:func:`owes_work`); not announced,
    and not part of equality (a change of it alone is no news for presence)."""

    total: int
    used: int
    owed: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.total < 0 or self.used < 0 or self.owed < 0:
            raise ValueError("slots must be >= 0")

    @property
    def free(self) -> int:
        """Slots this provider may join sessions with now (0 once it promised enough)."""
        if self.owed >= PROMISE_FACTOR * self.total:
            return 0
        return max(0, self.total - self.used)

    def __str__(self) -> str:
        return f"{self.used}/{self.total}"


@dataclass(slots=True)
class _Remembered(Generic[T]):
    task: str
    leader: bytes
    deadline_ms: int
    item: T


class GatheringAdverts(Generic[T]):
    """Advertisements a full provider may still join, picked round-robin per leader: the
    leader whose last turn is longest ago goes first (a leader never served before first).

    ``item`` is whatever the caller needs to join later (the node keeps the envelope).
    Times are the caller's monotonic milliseconds.
    """

    def __init__(self, limit: int = MAX_REMEMBERED) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        # leader -> its adverts, oldest first (dict order: first seen first)
        self._by_leader: OrderedDict[bytes, deque[_Remembered[T]]] = OrderedDict()
        self._count = 0
        self._turns = 0
        self._last_turn: OrderedDict[bytes, int] = OrderedDict()  # leader -> its last turn

    def __len__(self) -> int:
        return self._count

    def remember(self, task: str, leader: bytes, deadline_ms: int, item: T) -> None:
        """Keep an advert until ``deadline_ms`` (its join deadline); a task seen again is kept once."""
        queue = self._by_leader.get(leader)
        if queue is not None and any(r.task == task for r in queue):
            return
        if self._count >= self.limit:
            self._drop_oldest()
        if queue is None:
            queue = self._by_leader[leader] = deque()
        queue.append(_Remembered(task, leader, deadline_ms, item))
        self._count += 1

    def forget(self, task: str) -> None:
        """Drop a remembered advert (joined, aborted, or seen to be over)."""
        for leader, queue in list(self._by_leader.items()):
            kept = deque(r for r in queue if r.task != task)
            if len(kept) != len(queue):
                self._count -= len(queue) - len(kept)
                if kept:
                    self._by_leader[leader] = kept
                else:
                    del self._by_leader[leader]

    def next(self, now_ms: int, skip: Container[bytes] = ()) -> T | None:
        """The advert to join with a slot that just freed (expired ones dropped), or None.

        ``skip``: leaders not to serve now (at their cap of gathering sessions); their adverts
        stay remembered."""
        self._expire(now_ms)
        leaders = [lead for lead in self._by_leader if lead not in skip]
        if not leaders:
            return None
        leader = min(leaders, key=lambda lead: self._last_turn.get(lead, -1))
        queue = self._by_leader[leader]
        picked = queue.popleft()
        self._count -= 1
        if not queue:
            del self._by_leader[leader]
        self._turns += 1
        self._last_turn.pop(leader, None)
        self._last_turn[leader] = self._turns  # most recent last
        while len(self._last_turn) > MAX_LEADERS_SERVED:
            self._last_turn.popitem(last=False)
        return picked.item

    def pending_leaders(self) -> list[bytes]:
        """Leaders with remembered adverts, in the order they will be served."""
        return sorted(self._by_leader, key=lambda lead: self._last_turn.get(lead, -1))

    def _expire(self, now_ms: int) -> None:
        for leader, queue in list(self._by_leader.items()):
            kept = deque(r for r in queue if r.deadline_ms > now_ms)
            self._count -= len(queue) - len(kept)
            if kept:
                self._by_leader[leader] = kept
            else:
                del self._by_leader[leader]

    def _drop_oldest(self) -> None:
        """Make room: the oldest advert of the leader with the most remembered (a flood
        evicts its own adverts, not the others')."""
        if not self._by_leader:
            return
        leader = max(self._by_leader, key=lambda lead: len(self._by_leader[lead]))
        queue = self._by_leader[leader]
        queue.popleft()
        self._count -= 1
        if not queue:
            del self._by_leader[leader]
