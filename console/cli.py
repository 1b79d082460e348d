"""The ``rnet`` command: the headless commands of ``node.cli`` plus the console (``rnet up``,
and ``rnet node`` / ``rnet bootstrap`` without ``--no-ui``). It sits above node and console.

Textual is imported only by the subcommands that show a console, so ``rnet --help`` and the
headless paths never load it.
"""

from __future__ import annotations

import argparse
import sys

from node.cli import HEADLESS_SUBCOMMANDS, run_parsed
from node.cli import build_parser as build_node_parser

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "up": ("console.up", "start a local swarm (bootstrap + N providers) and open the console"),
    **HEADLESS_SUBCOMMANDS,
    "bootstrap": (
        "console.nodes",
        "run the bootstrap node (fixed address, tracks the mesh); console, or --no-ui",
    ),
    "node": ("console.nodes", "run a provider node (console, or --no-ui for headless)"),
}


def build_parser() -> argparse.ArgumentParser:
    return build_node_parser(SUBCOMMANDS)


def main(argv: list[str] | None = None) -> int:
    return run_parsed(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
