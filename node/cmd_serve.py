"""``rnet serve``: a headless node that serves the swarm as an Ollama/OpenAI-compatible endpoint.

Each HTTP completion request runs one swarm session with this node as leader (see
``node/gateway.py``). The node joins the swarm like ``rnet node --no-ui`` (same node flags) and
prints its events the same way; the gateway's address is announced once it listens.

Light at import time (``rnet --help`` imports it): aiohttp and the runtime load in ``run``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from typing import Any

from node.config import add_node_flags, getenv

logger = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:11500"
AGGREGATORS = ("mean", "median", "trimmed")


def _positive_int(text: str) -> int:
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


def add_gateway_flags(parser: argparse.ArgumentParser, *, listen_flag: str = "--listen") -> None:
    """The gateway's own flags (``rnet serve``; ``rnet node`` may reuse them with ``--serve``)."""
    g = parser.add_argument_group("gateway")
    g.add_argument(
        listen_flag,
        dest="listen",
        default=None,
        metavar="HOST:PORT",
        help=f"HTTP address to serve on (default: {DEFAULT_LISTEN}; $RNET_SERVE_LISTEN). "
        "A non-loopback address requires --token",
    )
    g.add_argument(
        "--providers",
        type=_positive_int,
        default=3,
        metavar="N",
        help="providers per session: wait for N to join, then assign roles (default: 3)",
    )
    g.add_argument(
        "--timeout",
        type=_positive_float,
        default=60.0,
        metavar="S",
        help="deadline of one session in seconds; past it the request gets a 503 (default: 60)",
    )
    g.add_argument(
        "--aggregator",
        choices=AGGREGATORS,
        default="mean",
        help="how verifiers' scores are combined per executor (default: mean)",
    )
    g.add_argument(
        "--token",
        default=None,
        help="require 'Authorization: Bearer <token>' on every request (default: "
        "$RNET_SERVE_TOKEN; required when serving beyond loopback)",
    )
    g.add_argument(
        "--max-body",
        type=int,
        default=None,
        metavar="BYTES",
        help="largest request body accepted, else 413 (default: 1 MiB)",
    )


def configure(parser: argparse.ArgumentParser) -> None:
    add_node_flags(parser, role="provider")
    add_gateway_flags(parser)


def gateway_settings(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """(listen address, GatewayConfig keyword arguments) from flags > environment > defaults.

    Raises ValueError with a message fit for the user (bad address, public bind without token).
    """
    from node.gateway import check_exposure, parse_listen

    listen = getattr(args, "listen", None) or getenv("RNET_SERVE_LISTEN", DEFAULT_LISTEN)
    token = getattr(args, "token", None) or getenv("RNET_SERVE_TOKEN")
    host, _port = parse_listen(listen)
    check_exposure(host, token)
    options: dict[str, Any] = {
        "providers": getattr(args, "providers", 3),
        "timeout_s": getattr(args, "timeout", 60.0),
        "aggregator": getattr(args, "aggregator", "mean"),
        "token": token,
    }
    if getattr(args, "max_body", None) is not None:
        options["max_body_bytes"] = args.max_body
    return listen, options


def run(args: argparse.Namespace) -> int:
    from node.config import ConfigError, resolve_node_config

    try:
        config = resolve_node_config(args, "provider")
        listen, options = gateway_settings(args)
        from node.gateway import GatewayConfig

        GatewayConfig(**options)  # validate before the node starts
    except (ConfigError, ValueError) as exc:
        print(f"rnet serve: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_main(args, config, listen, options))
    except KeyboardInterrupt:
        return 0


async def _main(args: argparse.Namespace, config: Any, listen: str, options: dict[str, Any]) -> int:
    from node.gateway import start_gateway
    from node.headless import EventPrinter
    from node.runtime import RuntimeError_, build_runtime, setup_logging

    printer = EventPrinter(sys.stdout, json_lines=config.json)
    try:
        runtime = build_runtime(args, config)
    except RuntimeError_ as exc:
        print(f"rnet serve: {exc}", file=sys.stderr)
        return 2
    runtime.subscribe(printer)
    setup_logging(config.log_level, runtime=runtime if config.json else None)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    try:
        await runtime.start()
    except Exception as exc:
        await runtime.aclose()
        print(f"rnet serve: {exc}", file=sys.stderr)
        return 1
    try:
        try:
            gateway = await start_gateway(runtime, listen, **options)
        except (OSError, ValueError, RuntimeError) as exc:
            print(f"rnet serve: cannot serve on {listen}: {exc}", file=sys.stderr)
            return 1
        _announce(config.json, gateway.url, options)
        try:
            await stop.wait()
        finally:
            logger.info("stopping the gateway")
            await gateway.close()
    finally:
        await runtime.aclose()
    return 0


def _announce(json_lines: bool, url: str, options: dict[str, Any]) -> None:
    """Tell the operator (or the test harness) where the endpoint is."""
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
            f"serving the swarm at {url} (Ollama API: OLLAMA_HOST={url.removeprefix('http://')}; "
            f"OpenAI API: base_url={url}/v1; model 'swarm')"
        )
    print(line, flush=True)


def add_serve_flag(parser: argparse.ArgumentParser) -> None:
    """``--serve ADDR`` (+ ``--serve-token``) for ``rnet node``: also serve the gateway there."""
    g = parser.add_argument_group("gateway")
    g.add_argument(
        "--serve",
        default=None,
        metavar="HOST:PORT",
        help="also serve the swarm as an Ollama/OpenAI-compatible endpoint on this address "
        "(see `rnet serve`; 3 providers per session, 60 s deadline)",
    )
    g.add_argument(
        "--serve-token",
        default=None,
        help="bearer token for --serve (default: $RNET_SERVE_TOKEN; required beyond loopback)",
    )


async def serve_from_args(runtime: Any, args: argparse.Namespace) -> Any:
    """Start the gateway for ``rnet node --serve ADDR`` (None when not asked).

    Call after ``runtime.start()``; ``await handle.close()`` before ``runtime.aclose()``.
    Raises ValueError (bad address, public bind without a token) or OSError (port in use).
    """
    listen = getattr(args, "serve", None)
    if not listen:
        return None
    from node.gateway import check_exposure, parse_listen, start_gateway

    token = getattr(args, "serve_token", None) or getenv("RNET_SERVE_TOKEN")
    check_exposure(parse_listen(listen)[0], token)
    handle = await start_gateway(runtime, listen, token)
    _announce(
        bool(getattr(args, "json", False)),
        handle.url,
        {"providers": 3, "timeout_s": 60.0, "aggregator": "mean", "token": token},
    )
    return handle
