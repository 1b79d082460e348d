"""The console over a real node: ``RuntimeLink`` adapts ``node.runtime.NodeRuntime`` to
``console.link.NodeLink``, and ``run_console_for_args`` builds node + App from parsed flags.

Imported only when a console is actually shown (``run_console``), so ``rnet --help`` and the
headless path never load Textual or libp2p through this module.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from node import events as ev

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExtraCommand:
    """A console-only interpreter command (``rnet up`` adds ``children`` and ``logs``)."""

    name: str
    usage: str
    help: str
    handler: Callable[[Any, list[str]], Any]


class RuntimeLink:
    """``NodeLink`` over a ``NodeRuntime``: start/stop, commands through its interpreter, and the
    gateway when the node flags ask for one (``--serve``)."""

    def __init__(self, runtime: Any, args: argparse.Namespace | None = None) -> None:
        self.runtime = runtime
        self.args = args
        self.closed = False
        self.gateway: Any = None
        self._unsubscribe: list[Callable[[], None]] = []

    def subscribe(self, callback: Callable[[Any], None]) -> None:
        self._unsubscribe.append(self.runtime.subscribe(callback))

    async def start(self) -> None:
        await self.runtime.start()
        if self.args is not None and getattr(self.args, "serve", None):
            from node.cmd_serve import serve_from_args

            try:
                self.gateway = await serve_from_args(self.runtime, self.args)
            except (ValueError, OSError) as exc:
                self.runtime.emit(ev.Error(message=f"--serve: {exc}", source="gateway"))
            else:
                url = getattr(self.gateway, "url", "?")
                self.runtime.emit(
                    ev.Log(level="INFO", logger="gateway", message=f"serving at {url}")
                )

    async def preflight(self) -> str | None:
        """A provider's model that cannot answer, said at once (the node still runs: it relays
        and leads). Returns the problem for the console's banner, or None."""
        backend = getattr(self.runtime, "slm_backend", None)
        if backend is None or getattr(backend, "simulated", False):
            return None
        from node.slm.base import SLMError

        try:
            await backend.check()
        except SLMError as exc:
            self.runtime.emit(ev.Error(message=str(exc), source="slm"))
            return f"{exc} — until then this node cannot answer or judge."
        return None

    async def aclose(self) -> None:
        self.closed = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self.gateway is not None:
            try:
                await asyncio.wait_for(self.gateway.close(), 2.0)
            except Exception:
                logger.exception("closing the gateway failed")
        backend = getattr(self.runtime, "slm_backend", None)
        try:
            await self.runtime.aclose()
        finally:
            if backend is not None:
                await backend.aclose()

    async def run_command(self, line: str) -> None:
        await self.runtime.execute(line)

    def command_names(self) -> list[str]:
        return sorted(self.runtime.interpreter.commands)


def run_console_for_args(
    args: argparse.Namespace,
    *,
    banner: str | None = None,
    extra_commands: Iterable[ExtraCommand] = (),
    default_providers: int = 3,
) -> int:
    """Build the node from node flags (``args.role``: provider or bootstrap), open the console,
    return the exit code. Bad configuration is one line on stderr and exit code 2."""
    from node.config import ConfigError, resolve_node_config
    from node.runtime import RuntimeError_, build_runtime, setup_logging

    role = getattr(args, "role", None) or "provider"
    try:
        config = resolve_node_config(args, role)
        runtime = build_runtime(args, config)
    except (ConfigError, RuntimeError_) as exc:
        print(f"rnet {role}: {exc}", file=sys.stderr)
        return 2
    for command in extra_commands:
        runtime.interpreter.register(command.name, command.usage, command.help, command.handler)
    # Every log record (libp2p's too) goes to the log pane and a file, never raw to the terminal.
    runtime.config.data_dir.mkdir(parents=True, exist_ok=True)
    log_file = runtime.config.data_dir / "console.log"
    setup_logging(config.log_level, runtime=runtime, log_file=str(log_file))

    from console.app import make_app

    backend = getattr(runtime, "slm_backend", None)
    app = make_app(
        RuntimeLink(runtime, args),
        role=role,
        backend=_backend_label(backend),
        simulated=bool(getattr(backend, "simulated", False)),
        banner=banner,
        default_providers=default_providers,
        handle_signals=True,
    )
    code = app.run()
    logger.info("console closed (log file %s)", log_file)
    return int(code or 0)


def _backend_label(backend: Any) -> str:
    """Short header label: ``sim/honest`` (the header adds SIMULATED) or ``ollama qwen2.5:1.5b``."""
    if backend is None:
        return ""
    if getattr(backend, "simulated", False):
        return str(backend.model)
    return f"{backend.backend} {backend.model}"
