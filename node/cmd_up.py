"""``rnet up``: a whole local swarm — a bootstrap and N headless providers as child processes,
then the console of a leader node in this process. Quitting the console stops every child.

Children are ``python -m node ... --no-ui --json`` processes; their output goes to
``<data dir>/logs/<name>.log`` (the console's ``children`` and ``logs <name>`` commands show
them). Stopping is terminate -> wait -> kill, and on Linux each child also gets SIGTERM from the
kernel if this process dies without cleaning up (``PR_SET_PDEATHSIG``), so no orphans are left.

Light at import time (``rnet --help`` imports it).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_PROVIDERS = 3
STOP_TIMEOUT_S = 5.0
# Backend and network flags a provider inherits from `rnet up` (attribute, flag).
INHERITED_FLAGS = (
    ("backend", "--backend"),
    ("model", "--model"),
    ("ollama_host", "--ollama-host"),
    ("timeout_gen", "--timeout-gen"),
    ("timeout_judge", "--timeout-judge"),
    ("sim_profile", "--sim-profile"),
    ("sim_seed", "--sim-seed"),
    ("sim_gen_ms", "--sim-gen-ms"),
    ("sim_judge_ms", "--sim-judge-ms"),
    ("sim_p", "--sim-p"),
    ("sim_friend", "--sim-friend"),
)


def configure(parser: argparse.ArgumentParser) -> None:
    # The leader takes every `rnet node` flag (session deadlines, --serve ...) plus --providers.
    from node.cmd_node import configure as configure_node

    configure_node(parser)
    parser.add_argument(
        "--providers",
        type=int,
        default=DEFAULT_PROVIDERS,
        metavar="N",
        help=f"headless provider processes to start (default: {DEFAULT_PROVIDERS})",
    )
    parser.epilog = (
        "--port is the bootstrap's port (default: a free one); --data-dir is the root of the "
        "local swarm (default: $RNET_DATA_DIR/up), one subdirectory per node plus logs/. "
        "With the ollama backend (default) and no reachable Ollama or model, the swarm runs the "
        "simulated backend instead and says so. --serve ADDR also serves the local swarm as an "
        "Ollama/OpenAI-compatible endpoint (N providers per request)."
    )


# -- child processes ---------------------------------------------------------------------------


@dataclass
class Child:
    """One child node process and where its output goes."""

    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def state(self) -> str:
        if self.process is None:
            return "not started"
        code = self.process.poll()
        return "running" if code is None else f"exited ({code})"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: ask the kernel to SIGTERM this child when its parent dies (no orphans even if
    ``rnet up`` is killed with SIGKILL)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


@dataclass
class LocalSwarm:
    """The children of one ``rnet up``: started in order, stopped all together."""

    root: Path
    env: dict[str, str]
    children: list[Child] = field(default_factory=list)
    stopping: bool = False

    def spawn(self, name: str, argv: list[str]) -> Child:
        log_path = self.root / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        child = Child(name, argv, log_path)
        self.children.append(child)
        with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
            child.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                # Own session: a Ctrl+C on the terminal reaches `rnet up` only, which then
                # stops the children in order.
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        logger.info("started %s (pid %d), log %s", name, child.process.pid, log_path)
        return child

    def watch(self) -> None:
        """One waiter thread per child: an unexpected exit becomes an error line in the console's
        log at once (through logging) instead of a silently missing peer. Started after every
        spawn, because forking with ``preexec_fn`` is only safe while there are no threads."""
        for child in self.children:
            threading.Thread(
                target=self._watch, args=(child,), name=f"wait-{child.name}", daemon=True
            ).start()

    def _watch(self, child: Child) -> None:
        assert child.process is not None
        code = child.process.wait()
        if not self.stopping:
            logger.error("%s exited with code %s — see `logs %s`", child.name, code, child.name)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """terminate -> wait (shared deadline) -> kill -> wait. Idempotent."""
        self.stopping = True
        running = [c.process for c in self.children if c.process and c.process.poll() is None]
        for proc in running:
            try:
                proc.terminate()
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        for proc in running:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("pid %d ignored SIGTERM; killing it", proc.pid)
                proc.kill()
                proc.wait()

    def describe(self) -> str:
        lines = [f"{'name':<12} {'pid':>7}  {'state':<12} log"]
        for child in self.children:
            pid = child.process.pid if child.process else 0
            lines.append(f"{child.name:<12} {pid:>7}  {child.state():<12} {child.log_path}")
        return "\n".join(lines)

    def tail(self, name: str, count: int = 20) -> str:
        child = next((c for c in self.children if c.name == name), None)
        if child is None:
            names = ", ".join(c.name for c in self.children)
            raise KeyError(f"no child named {name!r} (children: {names})")
        try:
            data = child.log_path.read_bytes()[-64_000:]
        except OSError as exc:
            return f"cannot read {child.log_path}: {exc}"
        lines = data.decode("utf-8", "replace").splitlines()[-count:]
        return "\n".join(lines) or "(empty log)"


# -- rnet up -----------------------------------------------------------------------------------


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _inherited(args: argparse.Namespace) -> list[str]:
    argv: list[str] = []
    for attr, flag in INHERITED_FLAGS:
        value = getattr(args, attr, None)
        if value is not None and value != "":
            argv += [flag, str(value)]
    if getattr(args, "judge_logprobs", False):
        argv.append("--judge-logprobs")
    return argv


def check_backend(args: argparse.Namespace) -> str | None:
    """Probe the model backend once. None when usable (or simulated); else the banner text, and
    ``args.backend`` is switched to ``sim`` for the whole local swarm. Raises ValueError for
    flags that cannot work at all."""
    from node.slm.base import SLMError
    from node.slm.config import backend_from_args

    try:
        backend = backend_from_args(args, "leader")
    except SLMError as exc:
        raise ValueError(str(exc)) from exc
    if backend.simulated:
        return None

    async def probe() -> None:
        try:
            await backend.check()
        finally:
            await backend.aclose()

    try:
        asyncio.run(probe())
    except SLMError as exc:
        args.backend = "sim"
        return fallback_banner(exc, backend)
    return None


def fallback_banner(exc: Exception, backend: Any) -> str:
    """Two short lines at 80 columns: what runs instead, why, and how to get real answers."""
    kind = getattr(exc, "kind", "")
    model, host = backend.model, getattr(backend, "host", "")
    if kind == "unreachable":
        return (
            f"SIMULATED backend: no Ollama at {host}. For real answers: `ollama serve`, "
            f"`ollama pull {model}` (or --ollama-host URL)."
        )
    if kind == "model_missing":
        return f"SIMULATED backend: {model} is not pulled at {host}. Run `ollama pull {model}`."
    return f"SIMULATED backend: {exc}"


def run(args: argparse.Namespace) -> int:
    from node.config import ConfigError, user_data_root

    if not 2 <= args.providers <= 64:
        print(
            "rnet up: --providers must be between 2 and 64 (a session needs one executor and "
            "one verifier)",
            file=sys.stderr,
        )
        return 2
    try:
        banner = check_backend(args)
    except ValueError as exc:
        print(f"rnet up: {exc}", file=sys.stderr)
        return 2
    if banner and args.no_ui:
        print(f"rnet up: {banner}", file=sys.stderr)

    from node.keys import DataDirLock, bootstrap_pair

    host = args.host or "127.0.0.1"
    root = Path(args.data_dir).expanduser() if args.data_dir else user_data_root() / "up"
    lock = DataDirLock(root)
    if not lock.try_acquire():
        print(f"rnet up: another `rnet up` uses {root} (pass --data-dir)", file=sys.stderr)
        return 2
    port = args.port or _free_port(host)
    bootstrap_key, bootstrap_node = bootstrap_pair(secrets.token_bytes(32), host, port)

    env = dict(os.environ)
    env["BOOTSTRAP_KEY"], env["BOOTSTRAP_NODE"] = bootstrap_key, bootstrap_node
    repo_root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo_root, env.get("PYTHONPATH")) if p)
    swarm = LocalSwarm(root, env)
    node_cmd = [sys.executable, "-m", "node"]
    common = ["--no-ui", "--json", "--host", host]
    for attr, flag in (
        ("router", "--router"),
        ("log_level", "--log-level"),
        ("max_dials", "--max-dials"),
    ):
        if getattr(args, attr, None) is not None:
            common += [flag, str(getattr(args, attr))]
    try:
        swarm.spawn(
            "bootstrap",
            [
                *node_cmd,
                "bootstrap",
                *common,
                "--port",
                str(port),
                "--name",
                "bootstrap",
                "--data-dir",
                str(root / "bootstrap"),
            ],
        )
        for i in range(1, args.providers + 1):
            name = f"provider-{i}"
            swarm.spawn(
                name,
                [
                    *node_cmd,
                    "node",
                    *common,
                    "--bootstrap",
                    bootstrap_node,
                    "--name",
                    name,
                    "--data-dir",
                    str(root / name),
                    *_inherited(args),
                ],
            )
        swarm.watch()
        leader = copy.copy(args)
        leader.bootstrap, leader.port, leader.role = bootstrap_node, None, "provider"
        leader.name = args.name or "leader"
        leader.data_dir = root / leader.name
        os.environ["BOOTSTRAP_NODE"] = bootstrap_node  # the leader agrees with its children
        if args.no_ui:
            from node.headless import run_headless

            return run_headless(leader, "provider")
        from console.app import run_console

        return run_console(
            leader,
            banner=banner,
            extra_commands=_swarm_commands(swarm),
            default_providers=args.providers,
        )
    except ConfigError as exc:
        print(f"rnet up: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        swarm.stop()
        lock.release()


def _swarm_commands(swarm: LocalSwarm) -> list[Any]:
    from console.runtime_link import ExtraCommand
    from node.commands import CommandError

    async def children(runtime: Any, args: list[str]) -> str:
        if args:
            raise CommandError("usage: children")
        return swarm.describe()

    async def logs(runtime: Any, args: list[str]) -> str:
        if not 1 <= len(args) <= 2 or (len(args) == 2 and not args[1].isdigit()):
            raise CommandError("usage: logs <child name> [lines]")
        try:
            return swarm.tail(args[0], int(args[1]) if len(args) == 2 else 20)
        except KeyError as exc:
            raise CommandError(str(exc.args[0])) from None

    return [
        ExtraCommand("children", "children", "the local swarm's child processes", children),
        ExtraCommand("logs", "logs <child name> [lines]", "the end of a child's log", logs),
    ]
