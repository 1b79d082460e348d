"""``rnet bootstrap``: the bootstrap node (fixed address, tracks the mesh). Here headless
(``python -m node bootstrap``); the ``rnet`` command (``console.cli``) opens the console unless
``--no-ui``.

Light at import time (``rnet --help`` imports it): the runtime is imported by ``run``.
"""

from __future__ import annotations

import argparse

from node.config import add_node_flags
from node.guard_flags import add_guard_flags


def configure(parser: argparse.ArgumentParser) -> None:
    add_node_flags(parser, role="bootstrap")
    add_guard_flags(parser, bootstrap=True)
    parser.epilog = (
        "The key comes from BOOTSTRAP_KEY (environment or .env); without one the public demo key "
        "of .env.example is used. Make your own pair with `rnet keygen`."
    )


def run(args: argparse.Namespace) -> int:
    # The headless runner loads trio and the runtime: only when a node runs, not for --help.
    from node.headless import run_headless

    return run_headless(args, "bootstrap")
