"""The floor: one floodsub broadcast round (publish -> delivered to every subscriber).

Measured across the very processes a session uses: the leader publishes a plain text message
(``publish <topic> <msg>`` on its stdin) on a topic every provider joined (``join <topic>``), and
a sample is the time from writing that command line to reading the last provider's ``message``
event for it. So the floor includes the same stdin hop in and JSON-line hop out as a session
timed from ``pipe N`` to the leader's ``result`` line.

Alone: ``python -m bench.floor --providers 3 --reps 30``.
"""

from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.cluster import BenchError, Cluster, Node
from bench.common import machine, machine_line, progress, say, summary, table

logger = logging.getLogger(__name__)

SAMPLE_TIMEOUT_S = 15.0


@dataclass
class FloorProbe:
    """A leader and its providers on one floor topic.

    ``sample()``: one broadcast, leader -> every provider (the floor of the brief).
    ``sample_many(k)``: ``k`` providers publish at the same moment and every node (leader and
    providers) must receive every one of those messages but its own: a round with ``k``
    senders, the shape of a session's response round (k = executors).
    ``sample_to_one(k)``: ``k`` providers publish at the same moment on a second topic only the
    leader joined, and the leader must receive all of them: the shape of a session's join
    (k = N) and score (k = verifiers) rounds, which go to the session's leader topic.
    Times are from the first command line written to the last event read.
    """

    leader: Node
    subscribers: Sequence[Node]
    topic: str
    first_ms: list[float] = field(default_factory=list)
    all_ms: list[float] = field(default_factory=list)
    many_ms: dict[int, list[float]] = field(default_factory=dict)
    to_one_ms: dict[int, list[float]] = field(default_factory=dict)
    failures: int = 0
    _i: int = 0

    @property
    def everyone(self) -> list[Node]:
        return [self.leader, *self.subscribers]

    def open(self) -> None:
        """Subscribe every node, then wait until a broadcast reaches all of them."""
        for node in self.everyone:
            node.command(f"join {self.topic}")
        self.leader.command(f"join {self.lead_topic}")
        missing: list[str] = []
        for attempt in range(10):
            try:
                self._round([self.leader], timeout=5.0)
                self._round(self.subscribers, timeout=5.0, to_leader=True)
                return
            except BenchError as exc:
                missing = [str(exc)[:300]]
                logger.info("floor topic %s not routed yet (attempt %d)", self.topic, attempt + 1)
        raise BenchError(f"a broadcast on {self.topic} never reached every node: {missing}")

    @property
    def lead_topic(self) -> str:
        return f"{self.topic}-lead"

    def close(self) -> None:
        for node in self.everyone:
            if node.alive:
                node.command(f"leave {self.topic}", ok=False)
        if self.leader.alive:
            self.leader.command(f"leave {self.lead_topic}", ok=False)

    def _round(
        self, senders: Sequence[Node], timeout: float, *, to_leader: bool = False
    ) -> tuple[float, float]:
        """Every sender publishes one message; (first, last) arrival in ms after the first send.
        ``to_leader``: on the topic only the leader joined, and only the leader must receive."""
        self._i += 1
        topic = self.lead_topic if to_leader else self.topic
        texts = {s.name: f"{topic}-{self._i}-{s.name}" for s in senders}
        if to_leader:
            receivers = [self.leader]
        else:
            receivers = [n for n in self.everyone if n not in senders or len(senders) > 1]
        marks = {n.name: n.mark() for n in receivers}
        sent = [s.send(f"publish {topic} {texts[s.name]}") for s in senders]
        t0 = min(sent)
        times = []
        for node in receivers:
            for sender in senders:
                if sender is node:
                    continue  # a node does not see its own publish
                text = texts[sender.name]
                e = node.wait_for(
                    lambda e, text=text: e.get("event") == "message" and e.get("text") == text,
                    timeout,
                    marks[node.name],
                    what=f"floor message {text}",
                )
                times.append((e["_t"] - t0) * 1000)
        return min(times), max(times)

    def sample(self) -> None:
        try:
            first, last = self._round([self.leader], SAMPLE_TIMEOUT_S)
        except BenchError as exc:
            self.failures += 1
            logger.warning("floor sample lost: %s", exc)
            return
        self.first_ms.append(first)
        self.all_ms.append(last)

    def sample_many(self, k: int) -> None:
        try:
            _, last = self._round(list(self.subscribers[:k]), SAMPLE_TIMEOUT_S)
        except BenchError as exc:
            self.failures += 1
            logger.warning("floor sample (%d senders) lost: %s", k, exc)
            return
        self.many_ms.setdefault(k, []).append(last)

    def sample_to_one(self, k: int) -> None:
        try:
            _, last = self._round(list(self.subscribers[:k]), SAMPLE_TIMEOUT_S, to_leader=True)
        except BenchError as exc:
            self.failures += 1
            logger.warning("floor sample (%d senders to the leader) lost: %s", k, exc)
            return
        self.to_one_ms.setdefault(k, []).append(last)

    def result(self) -> dict[str, object]:
        return {
            "subscribers": len(self.subscribers),
            "first_ms": summary(self.first_ms),
            "all_ms": summary(self.all_ms),
            "many_ms": {k: summary(v) for k, v in sorted(self.many_ms.items())},
            "to_one_ms": {k: summary(v) for k, v in sorted(self.to_one_ms.items())},
            "failures": self.failures,
            "samples_all_ms": [round(x, 2) for x in self.all_ms],
        }


def measure_floor(
    leader: Node, subscribers: Sequence[Node], reps: int, topic: str = "bench-floor"
) -> dict[str, object]:
    probe = FloorProbe(leader, subscribers, topic)
    probe.open()
    try:
        for _ in range(reps):
            probe.sample()
    finally:
        probe.close()
    return probe.result()


def floor_rows(results: dict[int, dict]) -> list[list[object]]:
    rows = []
    for n, r in sorted(results.items()):
        rows.append(
            [
                str(n),
                r["first_ms"]["median"],
                r["all_ms"]["median"],
                r["all_ms"]["p95"],
                r["all_ms"]["n"],
            ]
        )
    return rows


FLOOR_HEADERS = ["subscribers", "first ms (med)", "all ms (med)", "all ms (p95)", "samples"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--providers", type=int, default=3, help="subscribers (default 3)")
    parser.add_argument("--reps", type=int, default=30, help="broadcasts (default 30)")
    args = parser.parse_args(argv)
    say(machine_line(machine()))
    with Cluster(kinds={"message"}) as cluster:
        progress(f"starting bootstrap, leader and {args.providers} providers")
        cluster.start_bootstrap()
        (leader,) = cluster.start_nodes(["leader"], ["--no-auto-join"], role="leader")
        providers = cluster.add_providers(args.providers)
        result = measure_floor(leader, providers, args.reps)
    say(table(FLOOR_HEADERS, floor_rows({args.providers: result})))
    return 0 if not math.isnan(result["all_ms"]["median"]) else 1  # type: ignore[index]


if __name__ == "__main__":
    raise SystemExit(main())
