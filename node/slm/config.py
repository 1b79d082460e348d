"""Backend flags, their environment fallbacks, and building a node's backend from them.

Precedence: flag > environment > ``.env`` > default (:mod:`node.settings`). Environment: ``RNET_BACKEND`` (ollama|sim), ``OLLAMA_HOST`` (default
``http://127.0.0.1:11434``), ``RNET_MODEL`` (default ``qwen2.5:1.5b``).

Light at import time (``rnet --help`` imports it): the backends are imported by
:func:`backend_from_args` only.
"""

from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Mapping

from node.settings import Environment
from node.slm.base import Backend, SLMError
from node.slm.defaults import (
    BACKENDS,
    DEFAULT_BACKEND,
    DEFAULT_HOST,
    DEFAULT_MODEL,
    DEFAULT_TIMEOUT_GEN,
    DEFAULT_TIMEOUT_JUDGE,
    SIM_PROFILES,
    normalise_host,
)

log = logging.getLogger(__name__)


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
        "--sim-judge-q",
        type=_probability,
        default=None,
        metavar="Q",
        help="on `rnet eval` questions: probability that a judge is right about an answer "
        "(default per profile: honest 0.9, noisy 0.65)",
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


def backend_from_args(
    args: argparse.Namespace, node_name: str, environ: Mapping[str, str] | None = None
) -> Backend:
    """Build the node's backend from parsed flags (attributes missing from ``args`` fall back to
    environment and defaults, so parsers without these flags work too). Raises :class:`SLMError`
    (kind ``config``) for bad values. Does no I/O: call ``await backend.check()`` at start-up."""
    env = Environment() if environ is None else environ
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
            judge_q=getattr(args, "sim_judge_q", None),
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


__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "DEFAULT_HOST",
    "DEFAULT_MODEL",
    "SIM_PROFILES",
    "add_backend_flags",
    "backend_from_args",
    "normalise_host",
]
