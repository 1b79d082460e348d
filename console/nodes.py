"""``rnet node`` / ``rnet bootstrap`` with the console: the node's own flags, and the console
unless ``--no-ui`` (then exactly the headless ``python -m node`` command)."""

from __future__ import annotations

import argparse

from node import cmd_bootstrap, cmd_node


def configure_node(parser: argparse.ArgumentParser) -> None:
    cmd_node.configure(parser)


def configure_bootstrap(parser: argparse.ArgumentParser) -> None:
    cmd_bootstrap.configure(parser)


def run_node(args: argparse.Namespace) -> int:
    if args.no_ui:
        return cmd_node.run(args)
    return _console(args, "provider")


def run_bootstrap(args: argparse.Namespace) -> int:
    if args.no_ui:
        return cmd_bootstrap.run(args)
    return _console(args, "bootstrap")


def _console(args: argparse.Namespace, role: str) -> int:
    # Textual and the node are heavy: loaded when a console opens, not for `rnet --help`.
    from console.runtime_link import run_console

    return run_console(args, role=role)
