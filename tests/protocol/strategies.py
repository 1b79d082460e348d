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
    Join,
    Presence,
    Response,
    Result,
    Score,
    ScoreEntry,
    Scores,
)

SIGNERS = [NaclSigner(bytes([i + 1]) * 32) for i in range(12)]
PEERS = [s.peer_id for s in SIGNERS]

peer_ids = st.sampled_from(PEERS)
names = st.text(min_size=1, max_size=20).filter(lambda s: s.strip())
texts = st.text(max_size=200)
scores = st.floats(min_value=0.0, max_value=MAX_SCORE, allow_nan=False)
opt_scores = st.none() | scores
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
    return Result(
        winner=winner,
        score=None if winner is None else averages[winner],
        text=draw(texts),
        aggregator=draw(st.sampled_from(AGGREGATORS)),
        averages=averages,
        counts=counts,
        scores=matrix,
        missing=tuple(draw(st.lists(st.sampled_from(peers), unique=True))),
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
    st.builds(Score, executor=peer_ids, score=scores, reason=texts, judge_model=names),
    st.builds(
        Scores,
        entries=st.lists(
            st.builds(ScoreEntry, executor=peer_ids, score=scores, reason=texts),
            min_size=1,
            max_size=5,
            unique_by=lambda e: e.executor,
        ).map(tuple),
        judge_model=names,
    ),
    # a batch with failure reports: executors split between scored and could-not-judge
    st.lists(peer_ids, min_size=1, max_size=6, unique=True).flatmap(
        lambda ex: st.builds(
            Scores,
            entries=st.tuples(
                *(st.builds(ScoreEntry, executor=st.just(e), score=scores) for e in ex[1:])
            ),
            judge_model=names,
            failed=st.just((ex[0],)),
        )
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
