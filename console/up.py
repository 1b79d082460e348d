"""``rnet up``: a whole local swarm — a bootstrap and N headless providers as child processes,
then the console of a leader node in this process. Quitting the console stops every child.

Children are ``python -m node ... --no-ui --json`` processes; their output goes to
``<data dir>/logs/<name>.log`` (the console's ``children`` and ``logs <name>`` commands show
them). Stopping is terminate -> wait -> kill, and on Linux each child also gets SIGTERM from the
kernel if this process dies without cleaning up (``PR_SET_PDEATHSIG``), so no orphans are left.

The child processes are :class:`node.localswarm.LocalSwarm`'s. Light at import time (``rnet
--help`` imports it): the console and the node load in :func:`run`.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from console.link import ExtraCommand
from node.cmd_node import configure as configure_node
from node.commands.interpreter import CommandError
from node.config import ConfigError
from node.keys import DataDirLock, bootstrap_pair
from node.localswarm import LocalSwarm, child_env, free_port, node_argv
from node.settings import user_data_root
from node.slm.base import Backend, SLMError, probe
from node.slm.config import backend_from_args

if TYPE_CHECKING:
    from node.runtime.node import NodeRuntime

logger = logging.getLogger(__name__)

DEFAULT_PROVIDERS = 3
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
    configure_node(parser)
    parser.add_argument(
        "--providers",
        type=int,
        default=DEFAULT_PROVIDERS,
        metavar="N",
        help=f"headless provider processes to start (default: {DEFAULT_PROVIDERS})",
    )
    for action in parser._actions:
        # One truth per flag: in `rnet up`, --port and --data-dir mean the local swarm's.
        if "--port" in action.option_strings:
            action.help = "the local bootstrap's TCP port (default: a free one)"
        elif "--data-dir" in action.option_strings:
            action.help = (
                "root of the local swarm: one subdirectory per node plus logs/ "
                "(default: $RNET_DATA_DIR/up, i.e. ~/.local/share/rnet/up)"
            )
        elif "--bootstrap" in action.option_strings:
            action.help = argparse.SUPPRESS  # the local swarm makes its own bootstrap
        elif "--name" in action.option_strings:
            action.help = "the console node's name (default: leader)"
    parser.epilog = (
        "With the ollama backend (default) and no reachable Ollama or model, the swarm runs the "
        "simulated backend instead and says so. --serve ADDR also serves the local swarm as an "
        "Ollama/OpenAI-compatible endpoint (N providers per request)."
    )


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
    try:
        backend = backend_from_args(args, "leader")
    except SLMError as exc:
        raise ValueError(str(exc)) from exc
    if backend.simulated:
        return None

    async def probe_once() -> SLMError | None:
        try:
            return await probe(backend)
        finally:
            await backend.aclose()

    problem = asyncio.run(probe_once())
    if problem is None:
        return None
    args.backend = "sim"
    return fallback_banner(problem, backend)


def fallback_banner(exc: SLMError, backend: Backend) -> str:
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
    # The console (Textual) and the node (trio, the runtime) are heavy: loaded when `rnet up`
    # runs, not for `rnet --help`.
    from console.runtime_link import run_console
    from node.headless import run_headless

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

    host = args.host or "127.0.0.1"
    root = Path(args.data_dir).expanduser() if args.data_dir else user_data_root() / "up"
    lock = DataDirLock(root)
    if not lock.try_acquire():
        print(f"rnet up: another `rnet up` uses {root} (pass --data-dir)", file=sys.stderr)
        return 2
    port = args.port or free_port(host)
    bootstrap_key, bootstrap_node = bootstrap_pair(secrets.token_bytes(32), host, port)

    env = child_env(bootstrap_key=bootstrap_key, bootstrap_node=bootstrap_node)
    swarm = LocalSwarm(root, env)
    common = ["--host", host]
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
            node_argv(
                "bootstrap",
                "bootstrap",
                [*common, "--port", str(port), "--data-dir", str(root / "bootstrap")],
            ),
        )
        for i in range(1, args.providers + 1):
            name = f"provider-{i}"
            swarm.spawn(
                name,
                node_argv(
                    "node",
                    name,
                    [
                        *common,
                        "--bootstrap",
                        bootstrap_node,
                        "--data-dir",
                        str(root / name),
                        *_inherited(args),
                    ],
                ),
            )
        swarm.watch()
        leader = copy.copy(args)
        leader.bootstrap, leader.port, leader.role = bootstrap_node, None, "provider"
        leader.name = args.name or "leader"
        leader.data_dir = root / leader.name
        os.environ["BOOTSTRAP_NODE"] = bootstrap_node  # the leader agrees with its children
        if args.no_ui:
            return run_headless(leader, "provider")
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


def _swarm_commands(swarm: LocalSwarm) -> list[ExtraCommand]:
    async def children(runtime: NodeRuntime, args: list[str]) -> str:
        if args:
            raise CommandError("usage: children")
        return swarm.describe()

    async def logs(runtime: NodeRuntime, args: list[str]) -> str:
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
