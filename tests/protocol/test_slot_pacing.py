"""protocol/slot_pacing.py: slot use goes out on a trailing edge, paced by the swarm's size."""

from __future__ import annotations

from protocol.capacity import SlotUse
from protocol.slot_pacing import SETTLE_MS, SWARM_RATE_PER_S, SlotPacer, announce_interval_ms


def test_the_interval_grows_with_the_swarm_so_the_swarm_total_stays_bounded() -> None:
    assert announce_interval_ms(1) == SETTLE_MS  # a small swarm: as often as a change settles
    assert announce_interval_ms(0) == SETTLE_MS
    for nodes in (10, 26, 100):
        interval = announce_interval_ms(nodes)
        assert interval >= SETTLE_MS
        # every node announcing as often as allowed: about SWARM_RATE_PER_S presences a second
        assert nodes * 1000 / interval <= SWARM_RATE_PER_S
    assert announce_interval_ms(26) > announce_interval_ms(6)


def test_a_change_goes_out_after_it_settled_and_not_sooner_than_the_interval() -> None:
    pacer = SlotPacer()
    assert pacer.due_ms(5_000, nodes=26) == 5_000 + SETTLE_MS  # nothing sent yet
    pacer.sent(SlotUse(4, 0), 10_000)  # the presence at start
    # long after the last presence: as soon as the change settled
    assert pacer.due_ms(60_000, nodes=26) == 60_000 + SETTLE_MS
    # soon after it: once the swarm-paced interval has passed
    assert pacer.due_ms(10_500, nodes=26) == 10_000 + announce_interval_ms(26)
    assert pacer.due_ms(10_500, nodes=2) == 10_500 + SETTLE_MS


def test_only_a_use_that_differs_from_the_last_presence_is_worth_a_broadcast() -> None:
    pacer = SlotPacer()
    assert pacer.worth_sending(SlotUse(4, 0))  # never announced
    pacer.sent(SlotUse(4, 0), 0)
    assert not pacer.worth_sending(SlotUse(4, 0))  # 0 -> 1 -> 0 within the settle time: nothing
    assert pacer.worth_sending(SlotUse(4, 1))
    assert pacer.worth_sending(SlotUse(2, 0))  # the slots offered changed
