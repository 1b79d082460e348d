"""The ``rnet`` command line: one subcommand per module, imported only when it is run.

Each target module provides ``configure(parser)`` (its flags) and ``run(args) -> int`` (exit code).
The console (Textual) is imported lazily by the subcommands that show it, so headless paths never
load ``textual``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). Order is the order ``rnet --help`` shows.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "up": ("node.cmd_up", "start a local swarm (bootstrap + N providers) and open the console"),
    "bootstrap": ("node.cmd_bootstrap", "run the bootstrap node (fixed address, tracks the mesh)"),
    "node": ("node.cmd_node", "run a provider node (console, or --no-ui for headless)"),
    "pipe": ("node.cmd_pipe", "run one swarm session as leader, print the result and exit"),
    "slm": ("node.cmd_slm", "ask this node's model one prompt and print the answer"),
    "serve": ("node.cmd_serve", "serve the swarm as an Ollama/OpenAI-compatible HTTP endpoint"),
    "sessions": ("node.cmd_audit", "list the sessions stored in a node's data dir"),
    "audit": ("node.cmd_audit", "re-verify a stored session's signatures and recompute its tally"),
    "keygen": ("node.keys", "print a new BOOTSTRAP_KEY and the matching BOOTSTRAP_NODE"),
}


def build_parser(available_only: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnet",
        description="rnet-inference: a peer-to-peer swarm of small language models that answer "
        "and judge each other. See README.md.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if available_only and exc.name == module_name:
                continue  # not built yet: --help lists only what works
            raise
        configure = getattr(module, f"configure_{name}", None) or module.configure
        run = getattr(module, f"run_{name}", None) or module.run
        p = sub.add_parser(name, help=help_text, description=help_text)
        configure(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
