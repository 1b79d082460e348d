"""The console over a real node: ``RuntimeLink`` adapts an assembled node (``node.assemble``) to
``console.link.NodeLink``, and ``run_console`` builds node + App from parsed flags.

Imported only when a console is actually shown, so ``rnet --help`` and the headless path never
load Textual through this module.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Iterable

from console.app import make_app
from console.lifeline import exit_code
from console.link import ExtraCommand
from node import events as ev
from node.assemble import AssembledNode, assemble
from node.bridge import run_end_cause
from node.config import ConfigError, resolve_node_config
from node.errors import NodeError
from node.runtime.logs import setup_logging

logger = logging.getLogger(__name__)


class RuntimeLink:
    """``NodeLink`` over an assembled node: start/stop (the gateway too with ``--serve``),
    commands through its interpreter, the backend probe for the banner, the end of its network
    side (its trio run)."""

    def __init__(self, node: AssembledNode, *, offline_commands: Iterable[str] = ()) -> None:
        self.node = node
        self.runtime = node.runtime
        self.closed = False
        # `help` is answered by the interpreter alone; the others are the console's own
        # (`rnet up`'s children and logs look at local processes).
        self._offline = frozenset({"help", *offline_commands})
        self._unsubscribe: list[Callable[[], None]] = []

    def subscribe(self, callback: Callable[[ev.Event], None]) -> None:
        self._unsubscribe.append(self.runtime.subscribe(callback))

    async def start(self) -> None:
        await self.node.start()
        try:
            gateway = await self.node.serve_gateway()
        except (ValueError, OSError) as exc:
            self.runtime.emit(ev.Error(message=f"--serve: {exc}", source="gateway"))
        else:
            if gateway is not None:
                self.runtime.emit(
                    ev.Log(level="INFO", logger="gateway", message=f"serving at {gateway.url}")
                )

    async def preflight(self) -> str | None:
        """A provider's model that cannot answer, said at once (the node still runs: it relays
        and leads). Returns the problem for the console's banner, or None."""
        problem = await self.node.probe_backend()
        if problem is None:
            return None
        return f"{problem} — until then this node cannot answer or judge."

    async def aclose(self) -> None:
        self.closed = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        await self.node.aclose()

    async def run_command(self, line: str) -> None:
        await self.runtime.execute(line)

    def command_names(self) -> list[str]:
        return sorted(self.runtime.interpreter.commands)

    def offline_commands(self) -> frozenset[str]:
        return self._offline

    async def network_lost(self) -> str | None:
        ended = self.runtime.bridge.run_ended()
        if ended is None:
            raise RuntimeError("the node has not started")
        result = await asyncio.shield(ended)  # the App's cancel must not touch the run's end
        if self.closed:
            return None  # we asked for it (q, SIGTERM): nothing to report
        return run_end_cause(result)


def run_console(
    args: argparse.Namespace,
    *,
    role: str = "provider",
    banner: str | None = None,
    extra_commands: Iterable[ExtraCommand] = (),
    default_providers: int = 3,
) -> int:
    """Build the node from node flags, open the console, return the exit code. Bad
    configuration is one line on stderr and exit code 2."""
    try:
        config = resolve_node_config(args, role)
        node = assemble(args, config)
    except (ConfigError, NodeError) as exc:
        print(f"rnet {role}: {exc}", file=sys.stderr)
        return 2
    runtime = node.runtime
    extra_commands = list(extra_commands)
    for command in extra_commands:
        runtime.interpreter.register(command.name, command.usage, command.help, command.handler)
    # Every log record (libp2p's too) goes to the log pane and a file, never raw to the terminal.
    runtime.config.data_dir.mkdir(parents=True, exist_ok=True)
    log_file = runtime.config.data_dir / "console.log"
    setup_logging(config.log_level, runtime=runtime, log_file=str(log_file))
    app = make_app(
        RuntimeLink(node, offline_commands=[command.name for command in extra_commands]),
        role=role,
        backend=node.backend_label(),
        simulated=node.simulated,
        banner=banner,
        default_providers=default_providers,
        handle_signals=True,
    )
    app.run()
    if app.network_down is not None:
        logger.error("%s", app.down_line)
    logger.info("console closed (log file %s)", log_file)
    return exit_code(app, role, sys.stderr)
