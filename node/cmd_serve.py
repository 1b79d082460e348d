"""``rnet serve``: a headless node that serves the swarm as an Ollama/OpenAI-compatible endpoint.

Each HTTP completion request runs one swarm session with this node as leader (see
``node/gateway/``). The node joins the swarm like ``rnet node --no-ui`` (same node flags) and
prints its events the same way; the gateway's address is announced once it listens.

Light at import time (``rnet --help`` imports it): aiohttp and the runtime load in ``run``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from node.config import add_node_flags, getenv

logger = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:11500"
DEFAULT_PROVIDERS = 3
DEFAULT_TIMEOUT = 60.0
AGGREGATORS = ("mean", "median", "trimmed")


def _provider_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 2:
        raise argparse.ArgumentTypeError("at least 2 (one executor and one verifier)")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def add_gateway_flags(parser: argparse.ArgumentParser, *, aggregator: bool = True) -> None:
    """The gateway's own flags for ``rnet serve`` (``--aggregator`` unless sessions add it)."""
    g = parser.add_argument_group("gateway")
    g.add_argument(
        "--listen",
        default=None,
        metavar="HOST:PORT",
        help=f"HTTP address to serve on (default: {DEFAULT_LISTEN}; $RNET_SERVE_LISTEN). "
        "A non-loopback address requires --token",
    )
    g.add_argument(
        "--providers",
        type=_provider_count,
        default=None,
        metavar="N",
        help=f"providers per session: wait for N to join, then assign roles (default: {DEFAULT_PROVIDERS})",
    )
    g.add_argument(
        "--timeout",
        type=_positive_float,
        default=None,
        metavar="S",
        help=f"deadline of one session in seconds; past it the request gets a 503 (default: {DEFAULT_TIMEOUT:g})",
    )
    if aggregator:
        g.add_argument(
            "--aggregator",
            choices=AGGREGATORS,
            default=None,
            help="how verifiers' scores are combined per executor (default: mean)",
        )
    g.add_argument(
        "--token",
        default=None,
        help="require 'Authorization: Bearer <token>' on every request (default: "
        "$RNET_SERVE_TOKEN; required when serving beyond loopback)",
    )
    g.add_argument(
        "--max-in-flight",
        type=int,
        default=None,
        metavar="N",
        help="sessions led at once; further requests get 503 busy (default: 16)",
    )
    g.add_argument(
        "--max-body",
        type=int,
        default=None,
        metavar="BYTES",
        help="largest request body accepted, else 413 (default: 1 MiB)",
    )


def add_serve_flag(parser: argparse.ArgumentParser) -> None:
    """``--serve ADDR`` (+ ``--serve-token``) for ``rnet node``: also serve the gateway there."""
    g = parser.add_argument_group("gateway")
    g.add_argument(
        "--serve",
        default=None,
        metavar="HOST:PORT",
        help="also serve the swarm as an Ollama/OpenAI-compatible endpoint on this address "
        f"(see `rnet serve`; {DEFAULT_PROVIDERS} providers per session, {DEFAULT_TIMEOUT:g} s deadline)",
    )
    g.add_argument(
        "--serve-token",
        default=None,
        help="bearer token for --serve (default: $RNET_SERVE_TOKEN; required beyond loopback)",
    )


EPILOG = """\
Each request runs one swarm session led by this node; the reply is the winning answer.
  Ollama:  OLLAMA_HOST=127.0.0.1:11500  (ollama.generate(model="swarm", prompt=...))
  OpenAI:  OpenAI(base_url="http://127.0.0.1:11500/v1", api_key="unused"), model "swarm"
  curl:    curl http://127.0.0.1:11500/api/generate -d '{"model": "swarm", "prompt": "Hi"}'
Endpoints: /api/generate /api/chat /api/tags /api/show /api/version /v1/chat/completions
/v1/completions /v1/models. Loopback only unless --token (then 'Authorization: Bearer <token>').
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_node_flags(parser, role="provider")
    try:
        from node.sessions import add_session_flags
    except ImportError:
        add_session_flags = None  # the sessions engine is optional until it lands
    else:
        add_session_flags(parser)  # --join-deadline ..., --aggregator, --no-auto-join
    add_gateway_flags(parser, aggregator=add_session_flags is None)


def gateway_settings(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """(listen address, GatewayConfig keyword arguments) from flags > environment > defaults.

    Reads ``--serve``/``--serve-token`` (``rnet node``) or ``--listen``/``--token`` (``rnet
    serve``). Raises ValueError with a message fit for the user (bad address or option, public
    bind without a token).
    """
    from node.gateway import GatewayConfig, check_exposure, parse_listen

    listen = (
        getattr(args, "serve", None)
        or getattr(args, "listen", None)
        or getenv("RNET_SERVE_LISTEN", DEFAULT_LISTEN)
    )
    token = (
        getattr(args, "serve_token", None)
        or getattr(args, "token", None)
        or getenv("RNET_SERVE_TOKEN")
    )
    host, _port = parse_listen(listen)
    check_exposure(host, token)
    options: dict[str, Any] = {
        "providers": getattr(args, "providers", None) or DEFAULT_PROVIDERS,
        "timeout_s": getattr(args, "timeout", None) or DEFAULT_TIMEOUT,
        "aggregator": getattr(args, "aggregator", None) or "mean",
        "token": token,
    }
    if getattr(args, "max_body", None) is not None:
        options["max_body_bytes"] = args.max_body
    if getattr(args, "max_in_flight", None) is not None:
        options["max_in_flight"] = args.max_in_flight
    GatewayConfig(**options)  # raises ValueError for a bad combination, before anything starts
    return listen, options


def run(args: argparse.Namespace) -> int:
    """``rnet serve`` is a headless provider node whose gateway is always on."""
    try:
        listen, _options = gateway_settings(args)
    except ValueError as exc:
        print(f"rnet serve: {exc}", file=sys.stderr)
        return 2
    args.serve = listen
    args.no_ui = True
    from node.headless import run_headless

    return run_headless(args, "provider")


async def serve_from_args(runtime: Any, args: argparse.Namespace) -> Any:
    """Start the gateway for ``rnet serve`` / ``rnet node --serve ADDR`` (None when not asked).

    Call after ``runtime.start()`` on its asyncio loop; ``await handle.close()`` before
    ``runtime.aclose()``. Raises ValueError (bad address, public bind without a token) or
    OSError (port in use).
    """
    if not getattr(args, "serve", None):
        return None
    from node.gateway import start_gateway

    listen, options = gateway_settings(args)
    handle = await start_gateway(runtime, listen, **options)
    if getattr(args, "no_ui", False):
        # Headless: stdout is ours. Under the console it is the screen: the console shows it.
        _announce(bool(getattr(args, "json", False)), handle.url, options)
    return handle


def _announce(json_lines: bool, url: str, options: dict[str, Any]) -> None:
    """Tell the operator (or the test harness) where the endpoint is: one stdout line."""
    if json_lines:
        line = json.dumps(
            {
                "event": "gateway",
                "url": url,
                "providers": options["providers"],
                "timeout_s": options["timeout_s"],
                "aggregator": options["aggregator"],
                "token": bool(options.get("token")),
            }
        )
    else:
        line = (
            f"serving the swarm at {url} (Ollama: OLLAMA_HOST={url.removeprefix('http://')}; "
            f"OpenAI: base_url={url}/v1; model 'swarm')"
        )
    print(line, flush=True)
