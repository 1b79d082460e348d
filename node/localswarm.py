"""Local swarms of node processes: the pieces ``rnet up``, the tests (``tests/node/swarm.py``)
and the benchmarks (``bench/cluster.py``) share.

- :func:`free_port`, the demo bootstrap identity (``DEMO_BOOTSTRAP_*``, from ``node.config``);
- :func:`node_argv` / :func:`child_env`: how a headless child node is started
  (``python -m node <subcommand> --no-ui --json --name <name> ...``) and the environment it gets;
- :func:`wait_on`: wait on a ``threading.Condition`` until a check holds, with a deadline;
- :class:`LocalSwarm`: children that log to files and are stopped together (``rnet up``).

Light at import time (``rnet --help`` imports it through ``rnet up``).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from node.config import DEMO_BOOTSTRAP_KEY, DEMO_BOOTSTRAP_NODE

logger = logging.getLogger(__name__)

#: Peer ID of the demo bootstrap key (the last part of ``DEMO_BOOTSTRAP_NODE``).
DEMO_BOOTSTRAP_ID = DEMO_BOOTSTRAP_NODE.rsplit("/p2p/", 1)[1]
#: Where this checkout's packages are, for a child's PYTHONPATH.
REPO_ROOT = Path(__file__).resolve().parents[1]
STOP_TIMEOUT_S = 5.0
# Settings a child must not inherit from the parent's environment (the launcher sets its own).
_SWARM_VARIABLES = ("BOOTSTRAP_NODE", "BOOTSTRAP_KEY", "RNET_DATA_DIR", "LIBP2P_DEBUG")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def demo_bootstrap_maddr(port: int, host: str = "127.0.0.1") -> str:
    """The demo bootstrap's multiaddr on ``host:port``."""
    return f"/ip4/{host}/tcp/{port}/p2p/{DEMO_BOOTSTRAP_ID}"


def node_argv(
    subcommand: str,
    name: str,
    args: Sequence[str] = (),
    *,
    python_prefix: Sequence[str] = (),
) -> list[str]:
    """argv of a headless child node with JSON event lines on stdout."""
    return [
        sys.executable,
        *python_prefix,
        "-m",
        "node",
        subcommand,
        "--no-ui",
        "--json",
        "--name",
        name,
        *args,
    ]


def child_env(
    *,
    data_root: Path | None = None,
    bootstrap_key: str | None = DEMO_BOOTSTRAP_KEY,
    bootstrap_node: str | None = None,
    extra: Mapping[str, str] | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a child node: this checkout importable, unbuffered output, the swarm's
    own data root and bootstrap (never the parent's), then ``extra``."""
    env = dict(os.environ if base is None else base)
    for key in _SWARM_VARIABLES:
        env.pop(key, None)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), (base or os.environ).get("PYTHONPATH")) if p
    )
    env["PYTHONUNBUFFERED"] = "1"
    if data_root is not None:
        env["RNET_DATA_DIR"] = str(data_root)
    if bootstrap_key is not None:
        env["BOOTSTRAP_KEY"] = bootstrap_key
    if bootstrap_node is not None:
        env["BOOTSTRAP_NODE"] = bootstrap_node
    env.update(extra or {})
    return env


def wait_on(
    cond: threading.Condition,
    check: Callable[[], bool],
    timeout: float,
    describe: Callable[[], str],
    error: type[Exception] = TimeoutError,
) -> None:
    """Wait until ``check()`` holds, re-checked whenever ``cond`` is notified (each new event).

    Call with ``cond`` not held. The wait is capped at 0.5 s per round only because a process
    exit is not an event anyone notifies: ``check`` may look at it.
    """
    deadline = time.monotonic() + timeout
    with cond:
        while not check():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise error(f"timed out after {timeout:g} s waiting for {describe()}")
            cond.wait(min(remaining, 0.5))


# -- rnet up: children that log to files ------------------------------------------------------


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
        import ctypes  # only here: between fork and exec, in the child

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
