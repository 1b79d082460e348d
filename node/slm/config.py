"""Backend flags, their environment fallbacks, and building a node's backend from them.

Precedence: flag > environment (``.env`` is loaded into the environment by ``node.config``) >
default. Environment: ``RNET_BACKEND`` (ollama|sim), ``OLLAMA_HOST`` (default
``http://127.0.0.1:11434``), ``RNET_MODEL`` (default ``qwen2.5:1.5b``).

Light at import time (``rnet --help`` imports it): the backends are imported by
:func:`backend_from_args` only.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import urllib.parse
from collections.abc import Mapping

from node.slm.base import Backend, SLMError

log = logging.getLogger(__name__)

DEFAULT_HOST = "http://127.0.0.1:11434"
DEFAULT_MODEL = "qwen2.5:1.5b"
DEFAULT_BACKEND = "ollama"
DEFAULT_TIMEOUT_GEN = 120.0
DEFAULT_TIMEOUT_JUDGE = 60.0
BACKENDS = ("ollama", "sim")
SIM_PROFILES = ("honest", "noisy", "lazy", "adversarial", "faulty")


def normalise_host(host: str | None) -> str:
    """``OLLAMA_HOST`` as Ollama itself reads it: ``host``, ``host:port``, ``:port`` or a URL.
    No scheme -> ``http`` and port 11434; a scheme without port -> 80/443."""
    text = (host or "").strip()
    if not text:
        return DEFAULT_HOST
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest, port = "http", text, 11434
    elif scheme in ("http", "https"):
        port = 80 if scheme == "http" else 443
    else:
        raise SLMError(f"bad Ollama host {text!r}: scheme must be http or https", kind="config")
    try:
        split = urllib.parse.urlsplit(f"{scheme}://{rest}")
        hostname = split.hostname or "127.0.0.1"
        port = split.port or port
    except ValueError as exc:
        raise SLMError(f"bad Ollama host {text!r}: {exc}", kind="config") from None
    if ":" in hostname:  # IPv6 literal
        hostname = f"[{hostname}]"
    path = split.path.strip("/")
    return f"{scheme}://{hostname}:{port}" + (f"/{path}" if path else "")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def _milliseconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of milliseconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more milliseconds: {text!r}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a probability: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within 0..1: {text!r}")
    return value


def add_backend_flags(parser: argparse.ArgumentParser) -> None:
    """Add the model flags every node-like subcommand shares (see the team contract)."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="ollama (a real model) or sim (simulated, for demos and tests); "
        f"env RNET_BACKEND, default {DEFAULT_BACKEND}",
    )
    group.add_argument(
        "--model",
        default=None,
        help=f"Ollama model name; env RNET_MODEL, default {DEFAULT_MODEL} (sim: sim/<profile>)",
    )
    group.add_argument(
        "--ollama-host",
        default=None,
        metavar="URL",
        help=f"Ollama server; env OLLAMA_HOST, default {DEFAULT_HOST}",
    )
    group.add_argument(
        "--timeout-gen",
        type=_positive_seconds,
        default=DEFAULT_TIMEOUT_GEN,
        metavar="S",
        help=f"upper bound for one answer, seconds (default {DEFAULT_TIMEOUT_GEN:g})",
    )
    group.add_argument(
        "--timeout-judge",
        type=_positive_seconds,
        default=DEFAULT_TIMEOUT_JUDGE,
        metavar="S",
        help=f"upper bound for one grading, seconds (default {DEFAULT_TIMEOUT_JUDGE:g})",
    )
    group.add_argument(
        "--judge-logprobs",
        action="store_true",
        help="score = probability-weighted expectation over the score tokens when the server "
        "returns logprobs (finer, more stable); falls back to the written score",
    )
    sim = parser.add_argument_group("simulated model (--backend sim)")
    sim.add_argument(
        "--sim-profile",
        choices=SIM_PROFILES,
        default="honest",
        help="honest: right with probability p, grades fairly; noisy: grades with heavy noise; "
        "lazy: gives every answer 0.50; adversarial: grades --sim-friend 0.95, others 0.05; "
        "faulty: every answer fails and every grading is missing (default honest)",
    )
    sim.add_argument(
        "--sim-seed", type=int, default=0, metavar="N", help="seed of the simulation (default 0)"
    )
    sim.add_argument(
        "--sim-p",
        type=_probability,
        default=None,
        metavar="P",
        help="probability of a correct answer (default per profile: honest/adversarial 0.85, "
        "noisy 0.6, lazy 0.5, faulty 0.85)",
    )
    sim.add_argument(
        "--sim-gen-ms", type=_milliseconds, default=0.0, metavar="MS", help="simulated answer time"
    )
    sim.add_argument(
        "--sim-judge-ms",
        type=_milliseconds,
        default=0.0,
        metavar="MS",
        help="simulated grading time",
    )
    sim.add_argument(
        "--sim-friend",
        default=None,
        metavar="NAME",
        help="adversarial profile: the node name whose answers it scores high",
    )


def _environment() -> Mapping[str, str]:
    """The process environment over ``.env`` in the current directory (as ``node.config`` reads
    it). Empty values count as unset there, so they are dropped here too."""
    try:
        from node.config import read_dotenv
    except ImportError:  # the runtime's config module is optional for the SLM layer
        dotenv: dict[str, str] = {}
    else:
        dotenv = read_dotenv()
    merged = {k: v for k, v in dotenv.items() if v}
    merged.update({k: v for k, v in os.environ.items() if v})
    return merged


def backend_from_args(
    args: argparse.Namespace, node_name: str, environ: Mapping[str, str] | None = None
) -> Backend:
    """Build the node's backend from parsed flags (attributes missing from ``args`` fall back to
    environment and defaults, so parsers without these flags work too). Raises :class:`SLMError`
    (kind ``config``) for bad values. Does no I/O: call ``await backend.check()`` at start-up."""
    env = _environment() if environ is None else environ
    kind = getattr(args, "backend", None) or env.get("RNET_BACKEND") or DEFAULT_BACKEND
    kind = kind.strip().lower()
    if kind not in BACKENDS:
        raise SLMError(
            f"unknown backend {kind!r} (RNET_BACKEND): use one of {', '.join(BACKENDS)}",
            kind="config",
        )
    timeout_gen = float(getattr(args, "timeout_gen", None) or DEFAULT_TIMEOUT_GEN)
    timeout_judge = float(getattr(args, "timeout_judge", None) or DEFAULT_TIMEOUT_JUDGE)
    if kind == "sim":
        from node.slm.sim import SimBackend

        profile = getattr(args, "sim_profile", None) or "honest"
        if profile not in SIM_PROFILES:
            raise SLMError(f"unknown sim profile {profile!r}", kind="config")
        return SimBackend(
            name=node_name,
            profile=profile,
            seed=int(getattr(args, "sim_seed", None) or 0),
            p=getattr(args, "sim_p", None),
            gen_ms=float(getattr(args, "sim_gen_ms", None) or 0.0),
            judge_ms=float(getattr(args, "sim_judge_ms", None) or 0.0),
            friend=getattr(args, "sim_friend", None),
            timeout_gen=timeout_gen,
            timeout_judge=timeout_judge,
        )
    from node.slm.ollama_backend import OllamaBackend

    model = (getattr(args, "model", None) or env.get("RNET_MODEL") or DEFAULT_MODEL).strip()
    host = getattr(args, "ollama_host", None) or env.get("OLLAMA_HOST") or DEFAULT_HOST
    return OllamaBackend(
        name=node_name,
        model=model,
        host=host,
        timeout_gen=timeout_gen,
        timeout_judge=timeout_judge,
        judge_logprobs=bool(getattr(args, "judge_logprobs", False)),
    )
