"""The runtime inside a running asyncio loop (the console's situation): start, events, commands,
clean stop — threads and sockets released, nothing written to stderr."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import threading
from pathlib import Path

import pytest

from node import events as ev
from node.config import add_node_flags, resolve_node_config
from node.runtime import NodeRuntime, RuntimeError_, setup_logging
from tests.node.swarm import free_port


def bootstrap_config(tmp_path: Path, port: int, host: str = "127.0.0.1") -> object:
    parser = argparse.ArgumentParser()
    add_node_flags(parser, role="bootstrap")
    args = parser.parse_args(
        ["--data-dir", str(tmp_path / "boot"), "--port", str(port), "--host", host]
    )
    return resolve_node_config(args, "bootstrap")


async def test_runtime_starts_and_stops_inside_a_running_loop(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    threads_before = set(threading.enumerate())
    # listening on every interface: the announced address must still be a dialable one
    runtime = NodeRuntime(bootstrap_config(tmp_path, free_port(), host="0.0.0.0"))
    seen: list[ev.Event] = []
    ready = asyncio.Event()

    def sink(event: ev.Event) -> None:
        seen.append(event)
        if isinstance(event, ev.Ready):
            ready.set()

    runtime.subscribe(sink)
    setup_logging("info", runtime=runtime)  # as under the TUI: log records become events
    ticks = 0
    loop = asyncio.get_running_loop()

    def tick() -> None:  # stands for the UI: it must keep running while the node starts
        nonlocal ticks, handle
        ticks += 1
        handle = loop.call_later(0.001, tick)

    handle = loop.call_later(0.001, tick)
    try:
        await runtime.start()
        await asyncio.wait_for(ready.wait(), 10)
        announced = next(e for e in seen if isinstance(e, ev.Ready)).addrs
        assert announced and not any("/0.0.0.0/" in a for a in announced), announced
        assert not any("/0.0.0.0/" in str(a) for a in runtime.host.host.get_addrs())
        out = await runtime.execute("local")
        assert out.ok and runtime.peer_id_str in out.text
        bad = await runtime.execute("connect nowhere")
        assert not bad.ok and "not a peer multiaddr" in bad.text
        assert any(isinstance(e, ev.CommandOutput) for e in seen)
        assert any(isinstance(e, ev.Log) for e in seen)  # logging routed to events
        # a second node on the same data dir is refused with a clear message
        twin = NodeRuntime(runtime.config)
        with pytest.raises(RuntimeError_, match="another node"):
            await twin.start()
    finally:
        await asyncio.wait_for(runtime.aclose(), 5)
        handle.cancel()
        logging.getLogger().handlers.clear()
    assert ticks >= 3  # the loop kept running while the node started
    await runtime.aclose()  # idempotent
    # pitfall 11: libp2p's seen-cache sweeper thread is stopped (pooled idle workers of trio's
    # thread cache and asyncio's executor may stay; they are reused, not leaked)
    leftover = [
        t
        for t in set(threading.enumerate()) - threads_before
        if t.is_alive() and not t.name.startswith(("Trio thread", "asyncio_"))
    ]
    assert leftover == [], leftover
    # pitfall 2: the listening port is free again
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", runtime.config.port))
    captured = capfd.readouterr()
    assert captured.err == ""


async def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        runtime = NodeRuntime(bootstrap_config(tmp_path, port))
        with pytest.raises(RuntimeError_, match="cannot listen"):
            await runtime.start()
        await runtime.aclose()

    # py-libp2p binds with SO_REUSEPORT: a second node on a taken fixed port must be refused
    # too (a second process: one trio run per thread)
    import subprocess
    import sys

    from tests.node.swarm import ROOT

    port = free_port()
    first = NodeRuntime(bootstrap_config(tmp_path / "a", port))
    await first.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "node",
            "bootstrap",
            "--no-ui",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "b"),
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 1
        assert b"cannot listen" in err and b"ready" not in out
    finally:
        await first.aclose()


async def test_a_cancelled_close_still_frees_the_data_dir(tmp_path: Path) -> None:
    """An App torn down while its node is closing cancels ``aclose()``: trio must still stop and
    the data dir must be free for the next node (else: "another node is running")."""
    port = free_port()
    first = NodeRuntime(bootstrap_config(tmp_path, port))
    await first.start()

    async def cancel_mid_close() -> None:  # a close hook: the host close is under way in trio
        closing.cancel()

    first.on_close(cancel_mid_close)
    closing = asyncio.ensure_future(first.aclose())
    with pytest.raises(asyncio.CancelledError):
        await closing
    second = NodeRuntime(bootstrap_config(tmp_path, free_port()))
    second.claim_identity()  # the lock is free again
    await second.aclose()
