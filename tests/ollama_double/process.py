"""The process mode: ``python -m tests.ollama_double`` (flags below) and :func:`spawn_double`
for tests whose provider subprocesses point ``--ollama-host`` at it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.ollama_double.server import OllamaDouble

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def spawn_double(*args: str, timeout: float = 30.0) -> Iterator[str]:
    """Run ``python -m tests.ollama_double --port 0 *args`` and yield its URL; stop it after."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.ollama_double", "--port", "0", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = _read_url(proc, timeout)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def _read_url(proc: subprocess.Popen[str], timeout: float) -> str:
    # readline() blocks; a watchdog thread bounds the wait by killing a double that never starts.
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
    finally:
        timer.cancel()
    match = re.search(r"listening on (http://\S+)", line)
    if not match:
        err = proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
        raise RuntimeError(f"ollama double did not start: {line!r} {err[-500:]}")
    return match.group(1)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.ollama_double", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = a free port (printed)")
    parser.add_argument("--model", action="append", default=[], help="a served model (repeat)")
    parser.add_argument("--pullable", action="append", default=[], help="a model /api/pull adds")
    parser.add_argument("--answer", default=None, help="default answer ({model}, {prompt})")
    parser.add_argument("--judge-score", type=float, default=None, help="default judge score")
    parser.add_argument(
        "--solves", type=float, default=None, help="answer rnet eval questions right with P"
    )
    parser.add_argument("--delay-ms", type=float, default=0.0, help="delay before each reply")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="delay between chunks")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help='JSON: {"models": [{ModelSpec fields}], "pullable": [...]}',
    )
    return parser.parse_args(argv)


def build_from_args(args: argparse.Namespace) -> OllamaDouble:
    double = OllamaDouble(models=[], pullable=args.pullable)
    behaviour: dict[str, Any] = {
        "delay_s": args.delay_ms / 1000,
        "chunk_delay_s": args.chunk_delay_ms / 1000,
    }
    if args.answer is not None:
        behaviour["answer"] = args.answer
    if args.judge_score is not None:
        behaviour["judge_score"] = args.judge_score
    if args.solves is not None:
        behaviour["solves"] = args.solves
    for name in args.model:
        double.add_model(name, **behaviour)
    if args.config is not None:
        config = json.loads(args.config.read_text())
        for spec in config.get("models", []):
            double.add_model(**spec)
        double._state.pullable.update(config.get("pullable", []))
    if not double._state.models:
        double.add_model("qwen2.5:1.5b", **behaviour)
    return double


async def _serve(args: argparse.Namespace) -> None:
    double = build_from_args(args)
    url = await double.start(args.host, args.port)
    print(f"ollama-double listening on {url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await double.close()


def main(argv: list[str] | None = None) -> int:
    asyncio.run(_serve(_parse_args(argv)))
    return 0
