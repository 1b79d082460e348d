"""``rnet slm "prompt"``: ask this node's model one prompt, stream the answer to stdout, exit.

Uses the same model flags as a node (``--backend``, ``--model``, ``--ollama-host``, ...), so it
doubles as the check that a node's model is set up: with nothing listening at the Ollama host it
prints the one-line hint and exits 1. Exit codes: 0 answered, 1 model error, 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys

from node.config import LOG_LEVELS
from node.slm.base import Backend, SLMError
from node.slm.config import add_backend_flags, backend_from_args

log = logging.getLogger(__name__)

ONE_SHOT_NAME = "local"  # the node name a one-shot uses when --name is not given


def configure(parser: argparse.ArgumentParser) -> None:
    """The prompt, the model flags and the few others a one-shot uses (no swarm flags: it
    starts no node)."""
    parser.add_argument("prompt", nargs="+", help="the prompt (quote it, or give several words)")
    parser.add_argument(
        "--no-stream", action="store_true", help="print the answer once it is complete"
    )
    parser.add_argument(
        "--name",
        default=None,
        help=f"who asks (the simulated model seeds on it; default: {ONE_SHOT_NAME})",
    )
    parser.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, default=None, help="log verbosity (default: warning)"
    )
    add_backend_flags(parser)


def run(args: argparse.Namespace) -> int:
    level = (getattr(args, "log_level", None) or "warning").upper()
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    prompt = " ".join(args.prompt).strip()
    if not prompt:
        print("rnet slm: the prompt is empty", file=sys.stderr)
        return 2
    try:
        backend = backend_from_args(args, getattr(args, "name", None) or ONE_SHOT_NAME)
    except SLMError as exc:
        print(f"rnet slm: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(
        _ask(backend, prompt, as_json=bool(getattr(args, "json", False)), stream=not args.no_stream)
    )


async def _ask(backend: Backend, prompt: str, *, as_json: bool, stream: bool) -> int:
    wrote = False
    try:
        await backend.check()
        if as_json or not stream:
            generation = await backend.generate(prompt)
            if as_json:
                print(
                    json.dumps(
                        {
                            "text": generation.text,
                            "model": generation.model,
                            "backend": backend.backend,
                            "simulated": backend.simulated,
                            "timings": generation.timings,
                        },
                        ensure_ascii=False,
                    )
                )
            else:
                print(generation.text)
            return 0
        async with contextlib.aclosing(backend.generate_stream(prompt)) as chunks:
            async for chunk in chunks:
                sys.stdout.write(chunk)
                sys.stdout.flush()
                wrote = True
        print()
        return 0
    except SLMError as exc:
        if wrote:
            print()  # end the partial answer's line before the error
        print(f"rnet slm: {exc}", file=sys.stderr)
        return 1
    finally:
        await backend.aclose()
