"""``rnet node``: a provider node (its own model), console or headless.

Light at import time (``rnet --help`` imports it): the runtime is imported by ``run``.
"""

from __future__ import annotations

import argparse

from node.config import add_node_flags


def configure(parser: argparse.ArgumentParser) -> None:
    add_node_flags(parser, role="provider")


def run(args: argparse.Namespace) -> int:
    if args.no_ui:
        from node.headless import run_headless

        return run_headless(args, "provider")
    from console.app import run_console

    args.role = "provider"
    return run_console(args)
