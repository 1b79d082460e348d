"""``rnet serve``: a headless node that serves the swarm as an Ollama/OpenAI-compatible endpoint.

Each HTTP completion request runs one swarm session with this node as leader (see
``node/gateway/``). The node joins the swarm like ``rnet node --no-ui`` (same node flags) and
prints its events the same way; the gateway's address is announced once it listens.

Light at import time (``rnet --help`` imports it): aiohttp and the runtime load in ``run``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from node.config import add_node_flags
from node.gateway_settings import add_gateway_flags, gateway_settings
from node.guard_flags import add_guard_flags
from node.sessions.options import add_session_flags

logger = logging.getLogger(__name__)

EPILOG = """\
Each request runs one swarm session led by this node; the reply is the winning answer.
  Ollama:  OLLAMA_HOST=127.0.0.1:11500  (ollama.generate(model="swarm", prompt=...))
  OpenAI:  OpenAI(base_url="http://127.0.0.1:11500/v1", api_key="unused"), model "swarm"
  curl:    curl http://127.0.0.1:11500/api/generate -d '{"model": "swarm", "prompt": "Hi"}'
Endpoints: /api/generate /api/chat /api/tags /api/show /api/version /v1/chat/completions
/v1/completions /v1/models. Loopback only unless --token (then 'Authorization: Bearer <token>').
Honoured: num_predict/max_tokens, stop, temperature, seed, top_p, format/response_format
(JSON, schemas), tools (when providers support them). Embeddings are refused (400).
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_node_flags(parser, role="provider")
    add_session_flags(parser)  # --join-deadline ..., --aggregator, --no-auto-join
    add_guard_flags(parser, bootstrap=False)  # --members
    add_gateway_flags(parser, aggregator=False)


def run(args: argparse.Namespace) -> int:
    """``rnet serve`` is a headless provider node whose gateway is always on."""
    # The gateway package loads aiohttp: only when it runs, not for `rnet --help`.
    from node.gateway.config import GatewayConfig

    try:
        listen, options = gateway_settings(args)
        GatewayConfig(**options)  # a bad combination is refused before anything starts
    except ValueError as exc:
        print(f"rnet serve: {exc}", file=sys.stderr)
        return 2
    args.serve = listen
    args.no_ui = True
    # The headless runner loads trio and the runtime: only when it runs, not for `rnet --help`.
    from node.headless import run_headless

    return run_headless(args, "provider")
