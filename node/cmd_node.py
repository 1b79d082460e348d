"""``rnet node``: a provider node (its own model), console or headless.

Light at import time (``rnet --help`` imports it): the runtime is imported by ``run``. The
session flags (``node.sessions``) and ``--serve`` (``node.cmd_serve``) are added when those
modules are present.
"""

from __future__ import annotations

import argparse

from node.config import add_node_flags


def configure(parser: argparse.ArgumentParser) -> None:
    add_node_flags(parser, role="provider")
    try:
        from node.sessions import add_session_flags
    except ImportError:
        pass
    else:
        add_session_flags(parser)
    try:
        from node.cmd_serve import add_serve_flag
    except ImportError:
        pass
    else:
        add_serve_flag(parser)


def run(args: argparse.Namespace) -> int:
    if args.no_ui:
        from node.headless import run_headless

        return run_headless(args, "provider")
    from console.app import run_console

    args.role = "provider"
    return run_console(args)
