"""node/assemble.py: one node built from flags, its backend probed once and closed once, and
nothing left locked when the configuration is bad."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest

from node.assemble import assemble
from node.cmd_bootstrap import configure as configure_bootstrap
from node.cmd_node import configure
from node.config import resolve_node_config
from node.errors import NodeError
from node.localswarm import free_port


def node_args(data_dir: Path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure(parser)  # exactly the flags of `rnet node`
    return parser.parse_args(["--name", "n", "--data-dir", str(data_dir), *extra])


def test_a_provider_gets_its_backend_slm_and_session_commands(tmp_path: Path) -> None:
    args = node_args(tmp_path / "n", "--backend", "sim")
    node = assemble(args, resolve_node_config(args, "provider"))
    try:
        assert node.engine is not None and node.backend is not None and node.simulated
        commands = node.runtime.interpreter.commands
        assert {"slm", "pipe", "adv", "peers"} <= set(commands)
        # the data dir is claimed at once: a second node with the same name is refused
        with pytest.raises(NodeError, match="data dir"):
            assemble(args, resolve_node_config(args, "provider"))
    finally:
        asyncio.run(node.aclose())
    again = assemble(args, resolve_node_config(args, "provider"))  # closing freed it
    asyncio.run(again.aclose())


def test_the_backend_is_probed_once_and_closed_once(tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    args = node_args(tmp_path / "n", "--backend", "ollama", "--ollama-host", nowhere)
    node = assemble(args, resolve_node_config(args, "provider"))
    backend = node.backend
    assert backend is not None
    calls = {"check": 0, "aclose": 0}
    check, aclose = backend.check, backend.aclose

    async def counted_check() -> None:
        calls["check"] += 1
        await check()

    async def counted_aclose() -> None:
        calls["aclose"] += 1
        await aclose()

    backend.check = counted_check  # type: ignore[method-assign]
    backend.aclose = counted_aclose  # type: ignore[method-assign]

    async def scenario() -> list[str | None]:
        problems = await asyncio.gather(node.probe_backend(), node.probe_backend())
        problems.append(await node.probe_backend())
        await node.aclose()
        await node.aclose()
        return problems

    problems = asyncio.run(scenario())
    assert calls == {"check": 1, "aclose": 1}
    assert problems[0] is not None and "not reachable" in problems[0]
    assert problems[0] == problems[1] == problems[2]


def test_a_bad_session_flag_is_a_node_error_and_frees_the_data_dir(tmp_path: Path) -> None:
    args = node_args(tmp_path / "n", "--backend", "sim", "--join-deadline", "-1")
    with pytest.raises(NodeError, match="join-deadline"):
        assemble(args, resolve_node_config(args, "provider"))
    ok = node_args(tmp_path / "n", "--backend", "sim")
    asyncio.run(assemble(ok, resolve_node_config(ok, "provider")).aclose())


def test_the_bootstrap_runs_the_runtime_alone(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    configure_bootstrap(parser)
    args = parser.parse_args(["--data-dir", str(tmp_path / "b"), "--port", "0"])
    node = assemble(args, resolve_node_config(args, "bootstrap"))
    try:
        assert node.backend is None and node.engine is None
        assert "slm" not in node.runtime.interpreter.commands
    finally:
        asyncio.run(node.aclose())
