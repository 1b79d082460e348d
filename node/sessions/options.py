"""How this node leads and joins sessions: :class:`SessionOptions` and the flags that set them.

The deadline defaults are the protocol's (``protocol.messages.DEFAULT_*_MS``), defined once.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from protocol.admission import DEFAULT_MAX_PER_LEADER, DEFAULT_MAX_SESSION_MS, JoinPolicy
from protocol.blind import DEFAULT_CANARY_RATE
from protocol.messages import (
    AGGREGATORS,
    DEFAULT_EXEC_MS,
    DEFAULT_JOIN_MS,
    DEFAULT_VERIFY_MS,
)
from protocol.newcomers import DEFAULT_MAX_NEW_SHARE, DEFAULT_NEWCOMER_MS, NewcomerRule
from protocol.tally import DEFAULT_AGGREGATOR, SPLITS

DEFAULT_PROMPT = "What is the capital of France?"
# `adv` waits for a human's `ack`: its join window is longer unless --join-deadline is given.
DEFAULT_MANUAL_JOIN_MS = 60_000


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """How this node leads and joins sessions. Durations in ms."""

    join_ms: int = DEFAULT_JOIN_MS
    manual_join_ms: int = DEFAULT_MANUAL_JOIN_MS
    exec_ms: int = DEFAULT_EXEC_MS
    verify_ms: int = DEFAULT_VERIFY_MS
    aggregator: str = DEFAULT_AGGREGATOR
    split: str = "balanced"
    executors: int = 0  # > 0: this many executors per session led here (the rest verify)
    canary_rate: float = DEFAULT_CANARY_RATE  # per answer, the chance of a canary next to it
    auto_join: bool = True
    # model slots this provider offers (0: the backend's default, see node/sessions/slots.py);
    # a session holds one only while this node may still answer or judge in it
    slots: int = 0
    # participant sessions at once, slots held or not (a bound on state; capacity is slots)
    max_sessions: int = 16
    max_session_ms: int = DEFAULT_MAX_SESSION_MS  # join only sessions that end within this
    # sessions of one leader still gathering joins here at once (protocol/admission.py)
    max_per_leader: int = DEFAULT_MAX_PER_LEADER
    # leader: peers first seen less than newcomer_ms ago hold at most this share of verifiers
    newcomer_ms: int = DEFAULT_NEWCOMER_MS
    newcomer_share: float = DEFAULT_MAX_NEW_SHARE
    batch_scores: bool = True
    grace_ms: int = 5_000

    def __post_init__(self) -> None:
        for name in ("join_ms", "manual_join_ms", "exec_ms", "verify_ms"):
            value = getattr(self, name)
            if not 1 <= value <= 3_600_000:
                raise ValueError(f"{name.replace('_ms', '')} deadline must be within 1 ms..1 h")
        if self.aggregator not in AGGREGATORS:
            raise ValueError(f"unknown aggregator {self.aggregator!r} ({', '.join(AGGREGATORS)})")
        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r} ({', '.join(SPLITS)})")
        if self.max_sessions < 0:
            raise ValueError("max sessions must be >= 0")
        if not 0 <= self.slots <= 256:
            raise ValueError("--slots must be within 1..256")
        if self.max_per_leader < 1:
            raise ValueError("--max-per-leader must be >= 1")
        if self.max_session_ms < 1:
            raise ValueError("--max-session must be a positive number of seconds")
        if self.newcomer_ms < 0 or not 0.0 <= self.newcomer_share <= 1.0:
            raise ValueError("--newcomer-age must be >= 0 and --newcomer-share within 0..1")
        if not 0 <= self.executors <= 64:
            raise ValueError("--executors must be between 0 (half the joiners) and 64")
        if not (math.isfinite(self.canary_rate) and 0.0 <= self.canary_rate <= 1.0):
            raise ValueError("--canary-rate must be between 0 (no canaries) and 1")

    @property
    def join_policy(self) -> JoinPolicy:
        """Which advertisements this node joins (deadline cap, sessions per leader)."""
        return JoinPolicy(self.max_session_ms, self.max_per_leader)

    def newcomer_rule(self, first_seen: Mapping[bytes, int]) -> NewcomerRule | None:
        """The leader's cap on newcomers' verifier seats (None: off), reading ``first_seen``."""
        if not self.newcomer_ms:
            return None
        return NewcomerRule(first_seen, self.newcomer_ms, self.newcomer_share)

    @property
    def manual(self) -> SessionOptions:
        """The options of a manual ``adv``: the longer join window."""
        return replace(self, join_ms=self.manual_join_ms)

    def total_s(self) -> float:
        """Seconds a ``pipe`` needs for the configured deadlines as they are (see ``fitted``)."""
        return ((self.join_ms + self.exec_ms + self.verify_ms) / 1000 + 0.2) / 0.9 + 1

    def fitted(self, timeout_s: float) -> SessionOptions:
        """Deadlines scaled down (if needed) so the whole session ends within ``timeout_s``.

        A ``pipe`` never waits past its timeout: its three stages must fit in it, with a small
        margin for the result to travel back.
        """
        budget = max(1, int(timeout_s * 1000 * 0.9) - 200)
        total = self.join_ms + self.exec_ms + self.verify_ms
        if total <= budget:
            return self
        f = budget / total
        return replace(
            self,
            join_ms=max(1, int(self.join_ms * f)),
            exec_ms=max(1, int(self.exec_ms * f)),
            verify_ms=max(1, int(self.verify_ms * f)),
        )


def add_session_flags(
    parser: argparse.ArgumentParser, *, leader: bool = True, participant: bool = True
) -> None:
    """Session options: ``leader`` ones (deadlines, aggregator, split) for whoever advertises,
    ``participant`` ones (auto-join, its limit) for providers. ``rnet pipe`` only leads."""
    g = parser.add_argument_group("sessions")
    if leader:
        g.add_argument(
            "--join-deadline",
            type=float,
            default=None,
            metavar="S",
            help=f"seconds a session waits for joins (default: {DEFAULT_JOIN_MS // 1000}; "
            f"{DEFAULT_MANUAL_JOIN_MS // 1000} for a manual adv)",
        )
        g.add_argument(
            "--exec-deadline",
            type=float,
            default=None,
            metavar="S",
            help=f"seconds executors have to answer (default: {DEFAULT_EXEC_MS // 1000})",
        )
        g.add_argument(
            "--verify-deadline",
            type=float,
            default=None,
            metavar="S",
            help=f"seconds verifiers have to score after that (default: {DEFAULT_VERIFY_MS // 1000})",
        )
        g.add_argument(
            "--aggregator",
            choices=AGGREGATORS,
            default=None,
            help=f"how an executor's scores are combined (default: {DEFAULT_AGGREGATOR})",
        )
        g.add_argument(
            "--split",
            choices=SPLITS,
            default=None,
            help="role split: balanced (n//2 executors, default) or original (random index)",
        )
        g.add_argument(
            "--newcomer-age",
            type=float,
            default=None,
            metavar="S",
            help=f"peers first seen less than S seconds ago are newcomers; once enough "
            f"established peers joined, newcomers hold at most --newcomer-share of the verifier "
            f"seats; 0: off (default: {DEFAULT_NEWCOMER_MS // 1000})",
        )
        g.add_argument(
            "--newcomer-share",
            type=float,
            default=None,
            metavar="F",
            help=f"(see --newcomer-age) default: {DEFAULT_MAX_NEW_SHARE:.2f}",
        )
        g.add_argument(
            "--executors",
            type=int,
            default=None,
            metavar="K",
            help="K of the joiners answer, the others judge (at least one judges); "
            "default: as --split says",
        )
        g.add_argument(
            "--canary-rate",
            type=float,
            default=None,
            metavar="P",
            help="chance per answer that a corrupted copy goes to the judges as a canary "
            f"(0 disables; default: {DEFAULT_CANARY_RATE})",
        )
    if not participant:
        return
    try:
        g.add_argument(
            "--no-auto-join",
            action="store_true",
            default=False,
            help="do not join advertised sessions automatically",
        )
    except argparse.ArgumentError:
        return  # the command added the participant flags already (a parser shared by roles)
    g.add_argument(
        "--max-sessions",
        type=int,
        default=None,
        metavar="N",
        help="take part in at most N sessions at once, slot held or not (default: 16)",
    )
    g.add_argument(
        "--slots",
        type=int,
        default=None,
        metavar="N",
        help="model slots this provider offers: it joins a session only with a slot free, and "
        "a session holds it only while this node answers or judges in it (default: "
        "OLLAMA_NUM_PARALLEL or 1 for ollama, 4 for sim)",
    )
    g.add_argument(
        "--max-per-leader",
        "--sessions-per-leader",
        dest="max_per_leader",
        type=int,
        default=None,
        metavar="N",
        help="be in at most N sessions of one leader that are still gathering joins (joined, "
        "not assigned yet); its further adverts wait for one to start "
        f"(default: {DEFAULT_MAX_PER_LEADER})",
    )
    g.add_argument(
        "--max-session",
        type=float,
        default=None,
        metavar="S",
        help=f"decline sessions whose deadlines add up to more than S seconds "
        f"(default: {DEFAULT_MAX_SESSION_MS // 1000})",
    )


def options_from_args(args: argparse.Namespace) -> SessionOptions:
    """SessionOptions from parsed flags (any missing flag keeps its default). ValueError if bad."""
    kw: dict[str, int | float | str | bool] = {}
    for flag, name in (
        ("join_deadline", "join_ms"),
        ("exec_deadline", "exec_ms"),
        ("verify_deadline", "verify_ms"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"--{flag.replace('_', '-')} must be a positive number of seconds")
            kw[name] = max(1, int(value * 1000))
            if name == "join_ms":
                kw["manual_join_ms"] = kw[name]
    for flag in ("aggregator", "split"):
        value = getattr(args, flag, None)
        if value:
            kw[flag] = value
    if getattr(args, "no_auto_join", False):
        kw["auto_join"] = False
    for flag, name in (
        ("max_sessions", "max_sessions"),
        ("max_per_leader", "max_per_leader"),
        ("executors", "executors"),
        ("slots", "slots"),
        ("canary_rate", "canary_rate"),
        ("newcomer_share", "newcomer_share"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            kw[name] = value
    for flag, name in (("max_session", "max_session_ms"), ("newcomer_age", "newcomer_ms")):
        value = getattr(args, flag, None)
        if value is not None:
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"--{flag.replace('_', '-')} must be a number of seconds >= 0")
            kw[name] = int(value * 1000)
    return SessionOptions(**kw)
