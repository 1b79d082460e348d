"""What an operator reads, without a network: the bootstrap dial reports, the wrong-peer-ID
finder on libp2p's real exception chain, quiet third-party loggers, readable headless lines,
the pipe's live line, stored roles and the data-dir lock message."""

from __future__ import annotations

import io
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from libp2p.exceptions import MultiError
from libp2p.network.exceptions import SwarmDialAllFailedError, SwarmException
from libp2p.security.exceptions import HandshakeFailure
from libp2p.security.noise.exceptions import PeerIDMismatchesPubkey
from libp2p.transport.exceptions import SecurityUpgradeFailure

from node import events as ev
from node.config import resolve_node_config
from node.errors import DialError, NodeError, PeerIdMismatch
from node.headless import format_event
from node.keys import DataDirLock
from node.net.links import dial_failure, mismatched_peer_id
from node.pipe_progress import PipeProgress
from node.runtime.identity import claim_identity
from node.runtime.logs import setup_logging
from node.runtime.peers import rtt_moved
from node.runtime.provider import QUIET_START_S, STATUS_EVERY_S, DialReport
from node.sessions.views import format_result
from node.settings import Environment
from node.store import Store
from tests.console.helpers import EXECUTORS, result, session

ACTUAL = "12D3KooWCsMysmmg8D1jc8f5BhTu1ZeGxaD4nb243JG9KnX5nEzP"
EXPECTED = "12D3KooWDmeN7hi655HUcjAjXp2oRgi7dM14T8iK7XjD6n6jj7rX"
WHERE = "/ip4/127.0.0.1/tcp/8888"


def libp2p_mismatch() -> SwarmDialAllFailedError:
    """The chain py-libp2p 0.8 raises when the dialed node proves another peer ID."""
    try:
        try:
            try:
                raise PeerIDMismatchesPubkey(
                    "peer id does not correspond to the received pubkey: "
                    f"remote_peer={EXPECTED}, remote_peer_id_from_pubkey={ACTUAL}"
                )
            except PeerIDMismatchesPubkey as exc:
                raise HandshakeFailure("handshake failed") from exc
        except HandshakeFailure as exc:
            raise SecurityUpgradeFailure(
                "handshake failed when upgrading to secure connection"
            ) from exc
    except SecurityUpgradeFailure as exc:
        swarm_exc = SwarmException(f"failed to upgrade security for peer {EXPECTED}: {exc}")
        swarm_exc.__cause__ = exc
    dial = SwarmDialAllFailedError(f"unable to connect to {EXPECTED}, no addresses")
    dial.__cause__ = MultiError([swarm_exc])
    return dial


def test_the_real_peer_id_is_found_behind_libp2ps_dial_failure() -> None:
    assert mismatched_peer_id(libp2p_mismatch()) == ACTUAL
    refused = SwarmDialAllFailedError("unable to connect")
    refused.__cause__ = MultiError([ConnectionRefusedError(111, "Connection refused")])
    assert mismatched_peer_id(refused) is None
    assert dial_failure(refused) == "connection refused"


def provider_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "node.runtime.provider"]


def test_a_wrong_peer_id_is_reported_once_not_per_retry(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="node.runtime.provider")
    report = DialReport(WHERE)
    for second in range(60):
        report.failed(PeerIdMismatch(WHERE, EXPECTED, ACTUAL), float(second), 1.0)
    assert provider_lines(caplog) == [
        f"the bootstrap at {WHERE} is {ACTUAL}, expected {EXPECTED}: check BOOTSTRAP_NODE (the "
        "line `rnet keygen` printed with its BOOTSTRAP_KEY); retrying"
    ]


def test_an_unreachable_bootstrap_gets_a_status_line_with_attempts_and_next_try(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="node.runtime.provider")
    report = DialReport(WHERE)
    refused = DialError(WHERE, "connection refused")
    report.failed(refused, 0.0, 0.2)
    assert provider_lines(caplog) == [], "a bootstrap a moment from listening is not an alarm"
    seconds = [QUIET_START_S + i * 0.5 for i in range(int(3 * STATUS_EVERY_S / 0.5) + 1)]
    for t in seconds:
        report.failed(refused, t, 1.0)
    lines = provider_lines(caplog)
    assert lines[0] == f"bootstrap at {WHERE} unreachable (connection refused); retrying"
    status = lines[1:]
    assert len(status) == 3, lines
    assert all("still unreachable after" in s and "next attempt in 1.0 s" in s for s in status)
    report.connected()
    assert provider_lines(caplog)[-1].startswith("bootstrap reachable after")


def test_third_party_loggers_are_quiet_unless_debug() -> None:
    import libp2p  # noqa: F401  (its loggers exist once imported)

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        setup_logging("info", stream=io.StringIO())
        assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
        assert logging.getLogger("libp2p.network.swarm").getEffectiveLevel() == logging.CRITICAL
        assert logging.getLogger("libp2p.host.basic_host").getEffectiveLevel() > logging.ERROR
        setup_logging("debug", stream=io.StringIO())
        assert logging.getLogger("httpx").getEffectiveLevel() == logging.DEBUG
        assert logging.getLogger("libp2p.network.swarm").getEffectiveLevel() <= logging.INFO
    finally:
        setup_logging(logging.getLevelName(level).lower(), stream=io.StringIO())
        root.handlers[:] = handlers


def test_headless_lines_have_no_python_reprs() -> None:
    lines = [
        format_event(ev.Session.from_dict(session())),
        format_event(ev.Result.from_dict(result(requested=5, joined=4))),
        format_event(ev.PeerInfo(peer_id=EXECUTORS[0], rtt_ms=3.25)),
        format_event(ev.Mesh(topics={"swarm/mesh": EXECUTORS})),
    ]
    for line in lines:
        assert "['" not in line and "{'" not in line and "None" not in line, line
    assert lines[0].startswith("session task-1 stage verify (leader, leader ")
    assert "joined 4, answers 1/2, scores 1/2" in lines[0]
    assert "winner " + EXECUTORS[0][-6:] in lines[1] and "4 of 5 joined" in lines[1]
    assert lines[2] == f"peer {EXECUTORS[0][-6:]}: 3.2 ms, connected"
    assert format_event(ev.Error(message="boom", source="slm")) == "error (slm): boom"


def test_fewer_joiners_than_requested_is_said_in_the_result() -> None:
    short = format_result(ev.Result.from_dict(result(requested=5, joined=4)))
    assert "warning: only 4 of the 5 requested providers joined" in short
    assert "warning" not in format_result(ev.Result.from_dict(result(requested=4, joined=4)))


def test_the_pipe_draws_its_session_in_place_then_ends_the_line() -> None:
    out = io.StringIO()
    progress = PipeProgress(out, requested=4)
    joining = session(stage="advertise", joined=[], executors=[], verifiers=[], responses={})
    joining["scores"] = {}
    progress(ev.Session.from_dict(joining))
    progress(ev.Session.from_dict(session(stage="verify")))
    progress(ev.Session.from_dict(session(stage="verify", role="executor")))  # not ours
    progress.done()
    text = out.getvalue()
    assert text.count("\r\x1b[K") == 2 and text.endswith("\n")
    first, second = text.split("\n")[:2]
    assert "advertise" in first and "joined 0/4" in first
    assert "verify" in second and "joined 4/4  answers 1/2  scores 1/2" in second


def test_rtt_updates_when_it_moved() -> None:
    assert rtt_moved(None, 29.0)
    assert not rtt_moved(29.0, 30.0)
    assert rtt_moved(29.0, 4.1)


def test_a_participant_stores_its_assigned_role(tmp_path: Path) -> None:
    with Store.in_data_dir(tmp_path) as store:
        for role, stage in (("pending", "advertise"), ("executor", "execute"), ("pending", "x")):
            store.upsert_session("t1", leader="L", role=role, prompt="q", stage=stage, at_ms=1)
        assert store.session("t1").role == "executor"


def test_a_data_dir_in_use_names_the_real_fix(tmp_path: Path) -> None:
    env = Environment({"RNET_DATA_DIR": str(tmp_path)})
    ns = type("Args", (), {})

    def config(**flags: object):
        args = ns()
        for key, value in flags.items():
            setattr(args, key, value)
        return resolve_node_config(args, "provider", env)

    held = DataDirLock(tmp_path / "n1")
    assert held.try_acquire()
    try:
        with pytest.raises(NodeError, match="give this one its own --data-dir"):
            claim_identity(config(data_dir=tmp_path / "n1", name="other"))
        with pytest.raises(NodeError, match="pick another --name"):
            claim_identity(config(name="n1"))
        cfg, lock, _ = claim_identity(replace(config(), name="n1", data_dir=tmp_path / "n1",
                                              name_explicit=False))  # fmt: skip
        assert cfg.name == "n1-2"
        lock.release()
    finally:
        held.release()
