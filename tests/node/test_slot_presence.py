"""A provider's slot use in its presence (node/runtime/peers.py with protocol/slot_pacing.py):
a slot held for less than the settle time costs no broadcast, a change goes out with the use as
it is then, and in a big swarm one provider announces no more often than the paced interval.

The directory's own loop on trio's mock clock, moved by :func:`advance` from one deadline to
the next once every task waits, with a stand-in runtime that records the presences it is asked
to publish.
"""

from __future__ import annotations

from types import SimpleNamespace

import trio
import trio.testing

from node.runtime.peers import PeerDirectory
from protocol.capacity import SlotUse
from protocol.mesh import Presence
from protocol.slot_pacing import SETTLE_MS, announce_interval_ms

PEERS = 25  # a swarm of 24 providers, a leader and a bootstrap, as this node sees it


class StandInRuntime:
    def __init__(self) -> None:
        self.config = SimpleNamespace(name="p1")
        self.role, self.model, self.backend, self.status = "provider", "sim", "sim", ""
        self.capabilities: tuple[str, ...] = ()
        self.membership = SimpleNamespace(own_cert=b"")
        self.host = SimpleNamespace(addrs=lambda: [])
        self.slot_use = SlotUse(4, 0)
        self.sent: list[tuple[float, int]] = []  # (mock time, slots_used) of each presence

    async def publish_envelope(self, topic: str, body: Presence) -> None:
        self.sent.append((trio.current_time(), body.slots_used))


async def advance(clock: trio.testing.MockClock, seconds: float) -> None:
    """Move the mock clock ``seconds`` ahead, one pending deadline at a time, each step once
    every task waits (so each timer fires at its own time)."""
    end = trio.current_time() + seconds
    while True:
        await trio.testing.wait_all_tasks_blocked()
        step = trio.lowlevel.current_statistics().seconds_to_next_deadline
        if trio.current_time() + step > end:
            clock.jump(end - trio.current_time())
            await trio.testing.wait_all_tasks_blocked()
            return
        clock.jump(step)


def test_slot_use_goes_out_settled_and_paced_by_the_swarm_size() -> None:
    rt = StandInRuntime()
    directory = PeerDirectory(rt)  # type: ignore[arg-type]
    directory._known = {f"peer-{i}" for i in range(PEERS)}

    def use(used: int) -> None:
        rt.slot_use = SlotUse(4, used)
        directory.slots_changed()

    clock = trio.testing.MockClock()

    async def run() -> None:
        directory._slots_dirty = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(directory._slots_loop)
            await directory.publish_presence()  # at start: 0 of 4 in use
            assert rt.sent == [(0.0, 0)]
            await advance(clock, 60)
            use(1)  # joined a session, not picked: free again before it settled
            await advance(clock, 0.3)
            use(0)
            await advance(clock, 30)
            assert rt.sent == [(0.0, 0)], "a slot held 0.3 s costs no broadcast"
            use(1)  # t = 90.3: answering for a while
            await advance(clock, SETTLE_MS / 1000 + 0.1)
            assert len(rt.sent) == 2 and rt.sent[-1][1] == 1
            assert abs(rt.sent[-1][0] - (90.3 + SETTLE_MS / 1000)) < 0.01  # (ms resolution)
            # busy: 2, 3 and back to 1 within the interval -> one presence, with the use then
            for used in (2, 3, 1, 2):
                await advance(clock, 0.5)
                use(used)
            await advance(clock, 60)
            nursery.cancel_scope.cancel()

    trio.run(run, clock=clock)
    times = [t for t, _ in rt.sent]
    assert [u for _, u in rt.sent] == [0, 1, 2]
    gap = announce_interval_ms(PEERS + 1) / 1000
    assert abs(times[2] - times[1] - gap) < 0.01, "not sooner than the swarm-paced interval"
