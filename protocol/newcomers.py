"""New identities do not dominate the verifier roles (issue 13, point 5).

Keys are free, so a peer can arrive with many. Judging is where a crowd of fresh identities
would do harm (its votes decide the winner), so after the ordinary random split the leader
applies one constraint: when at least ``min_established`` of the joined peers are *established*
(first seen long enough ago), *newcomers* hold at most ``max_share`` of the verifier seats
(rounded down). Excess newcomer verifiers trade places with established executors drawn at
random; if there are not enough of those, the excess newcomers execute instead (the verifier
count shrinks; established verifiers always remain). Everything is drawn from the session's
``rng``, so the split stays random among eligible peers and is reproducible from its seed.

What "first seen" means is the caller's business (the node uses how long its bootstrap has
known a peer online); reputation (the trust issue) replaces it with weights later.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_MAX_NEW_SHARE",
    "DEFAULT_MIN_ESTABLISHED",
    "DEFAULT_NEWCOMER_MS",
    "NewcomerRule",
    "limit_newcomers",
]

DEFAULT_MAX_NEW_SHARE = 1 / 3
DEFAULT_MIN_ESTABLISHED = 2
DEFAULT_NEWCOMER_MS = 600_000  # first seen less than 10 minutes ago: a newcomer


@dataclass(frozen=True)
class NewcomerRule:
    """The leader's rule: who is a newcomer at assignment time, and the cap (module docstring).

    ``first_seen`` (peer -> epoch ms) is read when the roles are assigned, so the caller may keep
    filling it (it is the node's live table); a peer missing from it is first seen now."""

    first_seen: Mapping[bytes, int] = field(default_factory=dict)
    newcomer_ms: int = DEFAULT_NEWCOMER_MS
    max_share: float = DEFAULT_MAX_NEW_SHARE
    min_established: int = DEFAULT_MIN_ESTABLISHED

    def newcomers(self, peers: Collection[bytes], now_ms: int) -> set[bytes]:
        return {p for p in peers if now_ms - self.first_seen.get(p, now_ms) < self.newcomer_ms}

    def apply(
        self,
        executors: Sequence[bytes],
        verifiers: Sequence[bytes],
        rng: random.Random,
        now_ms: int,
    ) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        new = self.newcomers([*executors, *verifiers], now_ms)
        return limit_newcomers(
            executors,
            verifiers,
            new,
            rng,
            max_share=self.max_share,
            min_established=self.min_established,
        )


def limit_newcomers(
    executors: Sequence[bytes],
    verifiers: Sequence[bytes],
    newcomers: Collection[bytes],
    rng: random.Random,
    *,
    max_share: float = DEFAULT_MAX_NEW_SHARE,
    min_established: int = DEFAULT_MIN_ESTABLISHED,
) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """``(executors, verifiers)`` with newcomers' verifier seats capped (module docstring)."""
    if not 0.0 <= max_share <= 1.0:
        raise ValueError(f"max_share must be within 0..1, not {max_share}")
    joined = [*executors, *verifiers]
    established = [p for p in joined if p not in newcomers]
    if len(established) < max(1, min_established):
        return tuple(executors), tuple(verifiers)
    ex, ve = list(executors), list(verifiers)
    leaving = sorted(p for p in ve if p in newcomers)
    rng.shuffle(leaving)
    partners = sorted(p for p in ex if p not in newcomers)
    rng.shuffle(partners)
    # one newcomer at a time: moving one without a partner also shrinks the allowance
    while leaving and sum(p in newcomers for p in ve) > _allowed(max_share, len(ve)):
        newcomer = leaving.pop()
        i = ve.index(newcomer)
        if partners:
            partner = partners.pop()
            ve[i], ex[ex.index(partner)] = partner, newcomer
        else:
            del ve[i]
            ex.append(newcomer)
    return tuple(ex), tuple(ve)


def _allowed(max_share: float, seats: int) -> int:
    return math.floor(max_share * seats + 1e-9)
