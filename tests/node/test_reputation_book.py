"""The node's reputation book: fed from the envelopes in a real SQLite store, saved, reloaded."""

from pathlib import Path

from node.reputation import Book
from node.store import Store
from protocol.envelope import open_envelope
from protocol.identity import peer_id_to_str
from tests.protocol.helpers import TASK, Swarm
from tests.protocol.strategies import SIGNERS

LIAR = SIGNERS[1].peer_id


def _score(ex: bytes, ver: bytes) -> float:
    honest = (ex[-1] % 90) / 100
    return round(0.99 - honest, 2) if ver == LIAR else honest


def _session(seed: int) -> Swarm:
    swarm = Swarm(providers=7, auto_assign_at=7, canary_rate=0.5, score_of=_score, seed=seed)
    swarm.run_to_end()
    return swarm


def _store_transcript(store: Store, swarm: Swarm, skip: str = "") -> None:
    for raw in swarm.stored[swarm.leader_id]:
        env = open_envelope(raw)
        if env.kind == skip:
            continue
        store.record_envelope(
            task=TASK,
            kind=env.kind,
            sender=peer_id_to_str(env.sender),
            seq=env.seq,
            ts_ms=env.ts_ms,
            raw=raw,
            direction="accepted",
            at_ms=1,
        )


def test_a_stored_session_counts_once_and_survives_a_restart(tmp_path: Path) -> None:
    seed = next(s for s in range(30) if LIAR in _session(s).leader.verifiers)
    swarm = _session(seed)
    clock = iter(range(1_000, 10_000, 100)).__next__
    with Store.in_data_dir(tmp_path) as store:
        _store_transcript(store, swarm)
        book = Book(store, swarm.leader_id, clock=clock)
        assert book.observe(TASK)  # the peers it changed
        assert book.observe(TASK) == []  # seen: counted once
        honest = next(v for v in swarm.leader.verifiers if v != LIAR)
        assert book.standing(honest).standing.verifier > book.standing(LIAR).standing.verifier
        weights = book.verifier_weights()
        assert set(swarm.leader.verifiers) <= set(weights)
        before = [s.to_dict(history=True) for s in book.standings()]
    with Store.in_data_dir(tmp_path, readonly=True) as store:
        again = Book(store, swarm.leader_id, clock=lambda: 1_100)
        assert [s.to_dict(history=True) for s in again.standings()] == before
        assert again.ledger.seen(TASK)
        history = again.standing(honest).history
        assert [h.role for h in history if h.role != "canary"] == ["verifier"]


def test_a_session_whose_audit_fails_teaches_nothing(tmp_path: Path) -> None:
    swarm = _session(0)
    with Store.in_data_dir(tmp_path) as store:
        _store_transcript(store, swarm, skip="result")  # nothing proves a tally
        book = Book(store, swarm.leader_id)
        assert not book.observe(TASK)
        assert book.standings() == [] and store.reputation() == []


def test_rnet_peers_shows_standings_and_one_peers_history(tmp_path: Path, capsys) -> None:
    import argparse
    import json

    from node import cmd_peers

    swarm = _session(1)
    with Store.in_data_dir(tmp_path) as store:
        _store_transcript(store, swarm)
        assert Book(store, swarm.leader_id).observe(TASK)

    def run(*argv: str) -> tuple[int, str]:
        parser = argparse.ArgumentParser()
        cmd_peers.configure(parser)
        code = cmd_peers.run(parser.parse_args([*argv, "--data-dir", str(tmp_path)]))
        return code, capsys.readouterr().out

    code, out = run("--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == len(swarm.leader.executors) + len(swarm.leader.verifiers)
    assert {"peer", "reputation", "verifier", "executor", "sessions"} <= set(rows[0])
    peer = peer_id_to_str(swarm.leader.verifiers[0])
    code, out = run(peer[-8:])
    assert code == 0 and peer[-12:] in out and "verifier" in out and "earned" in out
    code, _ = run("nosuchpeer")
    assert code == 1
