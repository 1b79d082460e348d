"""``rnet node``: a provider node (its own model). Here headless (``python -m node node``); the
``rnet`` command (``console.cli``) opens the console unless ``--no-ui``.

Light at import time (``rnet --help`` imports it): the runtime is imported by ``run``.
"""

from __future__ import annotations

import argparse

from node.config import add_node_flags
from node.gateway_settings import add_serve_flag
from node.guard_flags import add_guard_flags
from node.sessions.options import add_session_flags


def configure(parser: argparse.ArgumentParser) -> None:
    add_node_flags(parser, role="provider")
    add_guard_flags(parser, bootstrap=False)
    add_session_flags(parser)
    add_serve_flag(parser)


def run(args: argparse.Namespace) -> int:
    # The headless runner loads trio and the runtime: only when a node runs, not for --help.
    from node.headless import run_headless

    return run_headless(args, "provider")
