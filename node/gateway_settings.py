"""The gateway's settings: defaults, flags (``rnet serve``, ``rnet node --serve``), the listen
address and loopback-or-token rules, and their resolution (flag > environment > .env > default,
through :mod:`node.settings`).

Outside ``node/gateway/`` on purpose: ``rnet --help`` reads it, and the gateway package loads
aiohttp.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
from collections.abc import Mapping
from typing import NotRequired, TypedDict

from node.settings import Environment
from protocol.messages import AGGREGATORS
from protocol.tally import DEFAULT_AGGREGATOR

DEFAULT_LISTEN = "127.0.0.1:11500"
DEFAULT_PROVIDERS = 3
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_MAX_IN_FLIGHT = 16
DEFAULT_MAX_QUEUE = 512  # requests waiting for a turn, as Ollama's OLLAMA_MAX_QUEUE
DEFAULT_BODY_TIMEOUT = 30.0


class GatewayOptions(TypedDict):
    """Resolved gateway settings: the keyword arguments of ``GatewayConfig``."""

    providers: int
    timeout_s: float
    aggregator: str
    token: str | None
    max_body_bytes: NotRequired[int]
    max_in_flight: NotRequired[int]
    max_queue: NotRequired[int]
    body_timeout_s: NotRequired[float]
    origins: NotRequired[tuple[str, ...]]


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
            help=f"how verifiers' scores are combined per executor (default: {DEFAULT_AGGREGATOR})",
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
        help="sessions led at once at most; fewer when the providers' slots allow fewer, "
        f"further requests wait in the queue (default: {DEFAULT_MAX_IN_FLIGHT})",
    )
    g.add_argument(
        "--queue",
        type=int,
        default=None,
        metavar="N",
        help="requests that wait (first come, first served) for a session to free; beyond "
        f"them 503 with Retry-After (default: {DEFAULT_MAX_QUEUE}; $RNET_SERVE_QUEUE)",
    )
    g.add_argument(
        "--max-body",
        type=int,
        default=None,
        metavar="BYTES",
        help="largest request body accepted, else 413 (default: 1 MiB)",
    )
    g.add_argument(
        "--body-timeout",
        type=_positive_float,
        default=None,
        metavar="S",
        help=f"a request body must arrive within S seconds, else 408 (default: {DEFAULT_BODY_TIMEOUT:g})",
    )
    g.add_argument(
        "--origins",
        default=None,
        metavar="LIST",
        help="browser origins allowed beyond the local ones, comma-separated, * wildcards "
        "(default: $RNET_ORIGINS, then $OLLAMA_ORIGINS; local origins are always allowed)",
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


def gateway_settings(
    args: argparse.Namespace, env: Environment | None = None
) -> tuple[str, GatewayOptions]:
    """(listen address, GatewayConfig keyword arguments) from flags > environment > defaults.

    Reads ``--serve``/``--serve-token`` (``rnet node``) or ``--listen``/``--token`` (``rnet
    serve``). Raises ValueError with a message fit for the user (bad address or option, public
    bind without a token).
    """
    env = Environment() if env is None else env
    listen = env.pick(
        getattr(args, "serve", None) or getattr(args, "listen", None),
        "RNET_SERVE_LISTEN",
        DEFAULT_LISTEN,
    )
    token = env.pick(
        getattr(args, "serve_token", None) or getattr(args, "token", None),
        "RNET_SERVE_TOKEN",
        None,
    )
    host, _port = parse_listen(listen)
    check_exposure(host, token)
    options: GatewayOptions = {
        "providers": getattr(args, "providers", None) or DEFAULT_PROVIDERS,
        "timeout_s": getattr(args, "timeout", None) or DEFAULT_TIMEOUT,
        "aggregator": getattr(args, "aggregator", None) or DEFAULT_AGGREGATOR,
        "token": token,
    }
    if getattr(args, "max_body", None) is not None:
        options["max_body_bytes"] = args.max_body
    if getattr(args, "max_in_flight", None) is not None:
        options["max_in_flight"] = args.max_in_flight
    queue = env.pick(getattr(args, "queue", None), "RNET_SERVE_QUEUE", None)
    if queue is not None:
        try:
            options["max_queue"] = int(queue)
        except ValueError:
            raise ValueError(f"--queue must be a whole number, not {queue!r}") from None
        if options["max_queue"] < 0:
            raise ValueError("--queue must be 0 or more")
    if getattr(args, "body_timeout", None) is not None:
        options["body_timeout_s"] = args.body_timeout
    options["origins"] = origins_from(getattr(args, "origins", None), env)
    return listen, options


def origins_from(flag: str | None, env: Mapping[str, str]) -> tuple[str, ...]:
    """Extra browser origins (``node.gateway.cors``): the flag, else ``RNET_ORIGINS`` and
    ``OLLAMA_ORIGINS`` together (so a browser app set up for Ollama works unchanged)."""
    if flag is not None:
        texts = [flag]
    else:
        texts = [env.get("RNET_ORIGINS", ""), env.get("OLLAMA_ORIGINS", "")]
    return tuple(o.strip() for text in texts for o in text.split(",") if o.strip())


def announce(json_lines: bool, url: str, options: GatewayOptions) -> None:
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


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``, ``:PORT`` or ``PORT`` for loopback) -> (host, port)."""
    text = listen.strip()
    if text.startswith("http://"):
        text = text[len("http://") :].rstrip("/")
    host, port_text = "127.0.0.1", text
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
        host = host or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"bad listen address {listen!r}: expected HOST:PORT") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"bad listen address {listen!r}: port out of range")
    if not host:
        raise ValueError(f"bad listen address {listen!r}: empty host")
    return host, port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token (raises ValueError)."""
    if not is_loopback(host) and not token:
        raise ValueError(
            f"listening on {host} exposes the swarm beyond this machine: "
            "set --token (clients then send 'Authorization: Bearer <token>')"
        )
