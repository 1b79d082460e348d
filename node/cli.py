"""The headless command line (``python -m node``): what child processes, scripts and servers
run. The ``rnet`` command (``console.cli``) is the same list plus ``rnet up`` and the console.

Each target module provides ``configure(parser)`` (its flags) and ``run(args) -> int`` (exit
code); a module is imported when the parser is built, so each stays light at import time.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping
from importlib import metadata

# name -> (module, one-line help). Order is the order ``--help`` shows.
HEADLESS_SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "bootstrap": ("node.cmd_bootstrap", "run the bootstrap node (fixed address, tracks the mesh)"),
    "node": ("node.cmd_node", "run a provider node"),
    "pipe": ("node.cmd_pipe", "run one swarm session as leader, print the result and exit"),
    "eval": (
        "node.evaluate.command",
        "does the swarm beat one model? questions with known answers",
    ),
    "slm": ("node.cmd_slm", "ask this node's model one prompt and print the answer"),
    "serve": ("node.cmd_serve", "serve the swarm as an Ollama/OpenAI-compatible HTTP endpoint"),
    "sessions": ("node.cmd_audit", "list stored sessions, outcomes re-derived from signed data"),
    "audit": ("node.cmd_audit", "prove a stored session from its signed envelopes"),
    "keygen": ("node.keys", "print a new BOOTSTRAP_KEY and the matching BOOTSTRAP_NODE"),
    "peers": ("node.cmd_peers", "the reputation of the peers a node judged with (its store)"),
    "sim": ("node.simulate", "the Byzantine experiment: thousands of simulated sessions"),
    "member": ("node.cmd_member", "add, list or remove the members of a closed swarm"),
}

DESCRIPTION = (
    "rnet-inference: a peer-to-peer swarm of small language models that answer and judge each "
    "other. See README.md."
)


def build_parser(
    subcommands: Mapping[str, tuple[str, str]] = HEADLESS_SUBCOMMANDS,
    *,
    prog: str = "rnet",
    description: str = DESCRIPTION,
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in subcommands.items():
        module = importlib.import_module(module_name)
        configure = getattr(module, f"configure_{name}", None) or module.configure
        run = getattr(module, f"run_{name}", None) or module.run
        p = sub.add_parser(name, help=help_text, description=help_text)
        configure(p)
        p.set_defaults(_run=run)
    return parser


def package_version() -> str:
    """The installed distribution's version (a source tree that is not installed: unknown)."""
    try:
        return metadata.version("rnet-inference")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def run_parsed(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`rnet sessions --json | head -2`): that is the reader's choice,
        # not an error. Point stdout at /dev/null so the interpreter's final flush stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m node``: every node runs headless here (``--no-ui`` is implied)."""
    return run_parsed(
        build_parser(description=DESCRIPTION + " Headless: the console is `rnet`."), argv
    )


if __name__ == "__main__":
    sys.exit(main())
