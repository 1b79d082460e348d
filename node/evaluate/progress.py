"""The progress line of a long run, on a terminal only (stderr): questions done, accuracy so far
per method, time left at the pace so far. Off a terminal it stays silent (the report says it all).
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

WIDTH = 24


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    def __init__(
        self,
        total: int,
        done: list[dict[str, Any]],
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        clock: Any = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = total
        self.clock = clock
        self.started = clock()
        self.resumed = len(done)
        self.right = {"swarm": 0, "majority": 0, "single": 0}
        self.count = 0
        for record in done:
            self._add(record)

    def _add(self, record: dict[str, Any]) -> None:
        self.count += 1
        for method in self.right:
            self.right[method] += bool(record[method]["correct"])

    def line(self) -> str:
        frac = self.count / self.total if self.total else 1.0
        bar = "#" * round(WIDTH * frac) + "." * (WIDTH - round(WIDTH * frac))
        acc = "  ".join(
            f"{m} {100 * r / self.count:.0f}%" for m, r in self.right.items() if self.count
        )
        fresh = self.count - self.resumed
        eta = ""
        if fresh > 0 and self.count < self.total:
            pace = (self.clock() - self.started) / fresh
            eta = f"  ETA {_duration(pace * (self.total - self.count))}"
        return f"[{bar}] {self.count}/{self.total}  {acc}{eta}"

    def update(self, record: dict[str, Any]) -> None:
        self._add(record)
        if self.enabled:
            self.stream.write("\r\x1b[2K" + self.line())
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
