"""``rnet up`` checks Ollama once and falls back to the simulated backend, clearly labelled;
the console's preflight says when a node's own model cannot answer. Official ``ollama`` client
against the SLM engineer's HTTP test double."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from console import up as cmd_up
from node.localswarm import free_port
from tests.ollama_double import OllamaDouble


def up_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cmd_up.configure(parser)
    return parser.parse_args(list(argv))


closed_port = free_port  # bound, then released: nothing listens there


def test_reachable_ollama_with_the_model_keeps_the_real_backend() -> None:
    with OllamaDouble(models=["qwen2.5:1.5b"]).in_thread() as double:
        args = up_args("--ollama-host", double.url, "--model", "qwen2.5:1.5b")
        assert cmd_up.check_backend(args) is None
    assert args.backend in (None, "ollama")


def test_missing_model_falls_back_to_sim_and_says_how_to_pull_it() -> None:
    with OllamaDouble(models=["llama3.2:1b"]).in_thread() as double:
        args = up_args("--ollama-host", double.url, "--model", "qwen2.5:1.5b")
        banner = cmd_up.check_backend(args)
    assert args.backend == "sim"
    assert banner is not None and banner.startswith("SIMULATED backend")
    assert "`ollama pull qwen2.5:1.5b`" in banner


def test_unreachable_ollama_falls_back_to_sim_and_says_how_to_start_it() -> None:
    args = up_args("--ollama-host", f"http://127.0.0.1:{closed_port()}")
    banner = cmd_up.check_backend(args)
    assert args.backend == "sim"
    assert banner is not None and "no Ollama at" in banner and "`ollama serve`" in banner


def test_sim_backend_is_not_probed() -> None:
    args = up_args("--backend", "sim", "--ollama-host", "http://127.0.0.1:1")
    assert cmd_up.check_backend(args) is None
    assert args.backend == "sim"


def test_console_preflight_reports_an_unreachable_model(tmp_path: Path) -> None:
    from console.runtime_link import RuntimeLink
    from node.assemble import assemble
    from node.config import add_node_flags, resolve_node_config

    parser = argparse.ArgumentParser()
    add_node_flags(parser)
    args = parser.parse_args(
        [
            "--data-dir",
            str(tmp_path / "n"),
            "--name",
            "n",
            "--backend",
            "ollama",
            "--ollama-host",
            f"http://127.0.0.1:{closed_port()}",
        ]
    )
    link = RuntimeLink(assemble(args, resolve_node_config(args, "provider")))

    async def check() -> str | None:
        try:
            return await link.preflight()
        finally:
            await link.aclose()  # never started: releases the data dir and the client

    problem = asyncio.run(check())
    assert problem is not None and "not reachable" in problem
    assert link.closed
