"""node.rejects: every rejection counted, at most one event per sender per interval."""

from __future__ import annotations

from node.runtime.rejects import RejectCounter, RejectReporter


def test_first_at_once_then_one_summary_per_interval() -> None:
    events: list = []
    reporter = RejectReporter(RejectCounter(), events.append, interval=5.0)
    for i in range(1000):
        reporter.note("not_msgpack" if i % 2 else "replay", "peer-a", "t", "d", now=i * 0.001)
    reporter.note("bad_signature", "peer-b", "t", "d", now=0.5)
    assert [e.sender for e in events] == ["peer-a", "peer-b"]
    assert reporter.counter.total == 1001
    assert reporter.flush(now=4.0) == 0, "the interval is not over"
    assert reporter.flush(now=5.0) == 1
    summary = events[-1]
    assert summary.sender == "peer-a" and summary.repeats == 999
    assert summary.reasons == {"not_msgpack": 500, "replay": 499}
    assert summary.count == 1001
    # after the interval the next one is shown at once again
    assert reporter.note("replay", "peer-a", "t", "d", now=6.0) is not None


def test_a_new_interval_emits_the_old_summary_first() -> None:
    events: list = []
    reporter = RejectReporter(RejectCounter(), events.append, interval=1.0)
    reporter.note("x", "p", "t", "", now=0.0)
    reporter.note("x", "p", "t", "", now=0.5)
    reporter.note("y", "p", "t", "", now=2.0)
    assert [(e.reason, e.repeats) for e in events] == [("x", 0), ("x", 1), ("y", 0)]
    assert reporter.counter.by_reason == {"x": 2, "y": 1}
