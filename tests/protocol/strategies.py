"""Hypothesis strategies and fixtures shared by the protocol tests."""

from __future__ import annotations

from hypothesis import strategies as st

from protocol.identity import NaclSigner
from protocol.messages import (
    AGGREGATORS,
    MAX_SCORE,
    Abort,
    Advertise,
    Assign,
    Body,
    Bootmesh,
    Item,
    Join,
    Presence,
    Response,
    Result,
    Reveal,
    Score,
    ScoreEntry,
    Scores,
)
from protocol.result import Commitments

SIGNERS = [NaclSigner(bytes([i + 1]) * 32) for i in range(32)]  # 25 for a 24-provider swarm
PEERS = [s.peer_id for s in SIGNERS[:12]]

peer_ids = st.sampled_from(PEERS)
names = st.text(min_size=1, max_size=20).filter(lambda s: s.strip())
texts = st.text(max_size=200)
scores = st.floats(min_value=0.0, max_value=MAX_SCORE, allow_nan=False)
opt_scores = st.none() | scores
labels = st.from_regex(r"[A-Z]{1,3}", fullmatch=True)
digests = st.binary(min_size=32, max_size=32)
task_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,20}", fullmatch=True)


@st.composite
def assigns(draw: st.DrawFn) -> Assign:
    peers = draw(st.lists(peer_ids, min_size=2, max_size=8, unique=True))
    cut = draw(st.integers(1, len(peers) - 1))
    return Assign(tuple(peers[:cut]), tuple(peers[cut:]), draw(names))


@st.composite
def results(draw: st.DrawFn) -> Result:
    peers = draw(st.lists(peer_ids, min_size=2, max_size=8, unique=True))
    cut = draw(st.integers(1, len(peers) - 1))
    executors, verifiers = peers[:cut], peers[cut:]
    matrix = {e: {v: draw(opt_scores) for v in verifiers} for e in executors}
    counts = {e: sum(1 for v in matrix[e].values() if v is not None) for e in executors}
    averages = {e: (draw(scores) if counts[e] else None) for e in executors}
    ranked = [e for e in executors if averages[e] is not None]
    winner = draw(st.sampled_from(ranked)) if ranked and draw(st.booleans()) else None
    extra: dict = {}
    if draw(st.booleans()):  # what a v2 session adds: inputs of the tally and commitments
        names_ = draw(
            st.lists(labels, min_size=len(executors) + 1, max_size=len(executors) + 1, unique=True)
        )
        label_of = dict(zip(executors, names_, strict=False))
        canary = names_[-1]
        responded = [e for e in executors if draw(st.booleans())]
        extra = {
            "params": {"clip": draw(st.floats(0, 1))},
            "weights": {v: draw(st.floats(0, 1)) for v in verifiers},
            "requested": len(peers),
            "joined": len(peers) + draw(st.integers(0, 3)),
            "labels": label_of,
            "canaries": {canary: {v: draw(opt_scores) for v in verifiers}},
            "commits": Commitments(
                advert=draw(digests),
                assign=draw(digests),
                responses={e: draw(digests) for e in responded},
                items={**{label_of[e]: draw(digests) for e in responded}, canary: draw(digests)},
                batches=tuple(draw(st.lists(digests, max_size=4, unique=True))),
                items_total=len(names_),
            ),
        }
    return Result(
        winner=winner,
        score=None if winner is None else averages[winner],
        text=draw(texts),
        aggregator=draw(st.sampled_from(AGGREGATORS)),
        averages=averages,
        counts=counts,
        scores=matrix,
        missing=tuple(draw(st.lists(st.sampled_from(peers), unique=True))),
        **extra,
    )


params = st.dictionaries(
    names, st.none() | st.booleans() | st.integers(-(2**31), 2**31) | names, max_size=4
)

bodies: st.SearchStrategy[Body] = st.one_of(
    st.builds(
        Advertise,
        prompt=names,
        wanted=st.integers(0, 10),
        join_ms=st.integers(1, 60_000),
        exec_ms=st.integers(1, 60_000),
        verify_ms=st.integers(1, 60_000),
        aggregator=st.sampled_from(AGGREGATORS),
        params=params,
    ),
    st.builds(Join, model=names, backend=names),
    assigns(),
    st.builds(Response, text=texts, model=names, gen_ms=st.integers(0, 10**6)),
    st.builds(Score, label=labels, score=scores, reason=texts, judge_model=names),
    st.builds(
        Scores,
        entries=st.lists(
            st.builds(ScoreEntry, label=labels, score=scores, reason=texts),
            min_size=1,
            max_size=5,
            unique_by=lambda e: e.label,
        ).map(tuple),
        judge_model=names,
    ),
    # a batch with failure reports: labels split between scored and could-not-judge
    st.lists(labels, min_size=1, max_size=6, unique=True).flatmap(
        lambda lab: st.builds(
            Scores,
            entries=st.tuples(
                *(st.builds(ScoreEntry, label=st.just(x), score=scores) for x in lab[1:])
            ),
            judge_model=names,
            failed=st.just((lab[0],)),
        )
    ),
    st.builds(Item, label=labels, text=texts, response=digests, total=st.integers(1, 20)),
    st.builds(
        Reveal,
        part=st.just(0),
        parts=st.integers(1, 3),
        envelopes=st.lists(st.binary(max_size=64), max_size=3).map(tuple),
        canaries=st.lists(
            st.builds(Item, label=labels, text=texts, response=digests, total=st.integers(1, 9)),
            max_size=2,
        ).map(tuple),
    ),
    results(),
    st.builds(Abort, reason=names),
    st.builds(
        Presence,
        name=texts,
        role=st.sampled_from(["provider", "bootstrap"]),
        model=texts,
        backend=texts,
        addrs=st.lists(texts, max_size=3).map(tuple),
        status=texts,
    ),
    st.builds(
        Bootmesh,
        topics=st.dictionaries(names, st.lists(peer_ids, unique=True, max_size=4).map(tuple)),
    ),
)


def task_for(body: Body, task: str = "task-1") -> str:
    return "" if body.KIND in ("presence", "bootmesh") else task
