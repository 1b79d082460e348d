"""Test helper: a real swarm of ``rnet`` node processes on loopback, driven through ``--json``.

Reusable by every engineer's multi-process tests (API kept stable)::

    from tests.node.swarm import Swarm

    def test_something(tmp_path):
        with Swarm(tmp_path) as swarm:
            boot = swarm.start_bootstrap()
            p1, p2 = swarm.start_providers(2)            # started together, waited for `ready`
            p1.command("join demo")                       # -> the command_output event (dict)
            p2.wait_for(lambda e: e["event"] == "message", timeout=20)
            swarm.wait_until(lambda: len(p1.peer_ids()) == 2, timeout=20)

Every node runs ``python -m node <bootstrap|node> --no-ui --json`` with ``cwd`` = a temp dir (no
stray ``.env``), its own data dir under it, the bootstrap on a free port (never 8888), and
``RNET_BACKEND=sim`` unless overridden. Events are dicts (``to_dict()`` form). Waits are bounded
by a deadline and raise ``AssertionError`` naming what was awaited plus the node's last events;
nothing sleeps a fixed time.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from node.localswarm import (
    DEMO_BOOTSTRAP_ID,
    REPO_ROOT,
    child_env,
    demo_bootstrap_maddr,
    free_port,
    node_argv,
    wait_on,
)

ROOT = REPO_ROOT
__all__ = ["DEMO_BOOTSTRAP_ID", "Event", "NodeProc", "Swarm", "free_port", "is_event"]
# The machine is shared and slow under load: deadlines are upper bounds, not sleeps.
DEFAULT_TIMEOUT = 30.0

Event = dict[str, Any]
Predicate = Callable[[Event], bool]


def is_event(kind: str, **fields: Any) -> Predicate:
    """Predicate: event of type ``kind`` whose fields equal ``fields``."""

    def pred(e: Event) -> bool:
        return e.get("event") == kind and all(e.get(k) == v for k, v in fields.items())

    return pred


class NodeProc:
    """One node process: its events, stdin commands, and shutdown."""

    def __init__(
        self,
        swarm: Swarm,
        name: str,
        role: str,
        argv: list[str],
        env: dict[str, str],
    ) -> None:
        self.swarm = swarm
        self.name = name
        self.role = role
        self.argv = argv
        self.events: list[Event] = []
        self.stderr_lines: list[str] = []
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            argv,
            cwd=swarm.workdir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True, name=f"{name}-out"),
            threading.Thread(target=self._read_stderr, daemon=True, name=f"{name}-err"),
        ]
        for t in self._readers:
            t.start()

    # -- reading ---------------------------------------------------------------------------------

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if not line:
                continue
            try:
                event = json.loads(line)
                if not isinstance(event, dict):
                    raise ValueError
            except ValueError:
                event = {"event": "_raw", "text": line}
            event["_t"] = time.monotonic() - self.started_at
            with self.swarm.cond:
                self.events.append(event)
                self.swarm.cond.notify_all()
        with self.swarm.cond:
            self.swarm.cond.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self.swarm.cond:
                self.stderr_lines.append(line.rstrip("\n"))
                self.swarm.cond.notify_all()

    # -- waiting ---------------------------------------------------------------------------------

    def find(self, pred: Predicate, since: int = 0) -> Event | None:
        with self.swarm.cond:
            for e in self.events[since:]:
                if pred(e):
                    return e
        return None

    def find_all(self, pred: Predicate, since: int = 0) -> list[Event]:
        with self.swarm.cond:
            return [e for e in self.events[since:] if pred(e)]

    def mark(self) -> int:
        """Current position in the event list (pass as ``since`` to see only later events)."""
        with self.swarm.cond:
            return len(self.events)

    def wait_for(
        self,
        pred: Predicate,
        timeout: float = DEFAULT_TIMEOUT,
        since: int = 0,
        what: str = "",
    ) -> Event:
        """The first event (at index >= ``since``) matching ``pred``; waits up to ``timeout``."""
        found: list[Event] = []

        def check() -> bool:
            for e in self.events[since:]:
                if pred(e):
                    found.append(e)
                    return True
            if self.proc.poll() is not None and not self._readers[0].is_alive():
                raise AssertionError(
                    f"{self.name} exited ({self.proc.returncode}) while waiting for "
                    f"{what or pred}\n{self.tail()}"
                )
            return False

        self.swarm._wait(check, timeout, lambda: f"{self.name}: {what or pred}\n{self.tail()}")
        return found[0]

    def wait_event(
        self, kind: str, timeout: float = DEFAULT_TIMEOUT, since: int = 0, **fields: Any
    ) -> Event:
        return self.wait_for(
            is_event(kind, **fields), timeout, since, what=f"{kind} {fields or ''}"
        )

    def wait_ready(self, timeout: float = DEFAULT_TIMEOUT) -> Event:
        return self.wait_event("ready", timeout)

    # -- commands --------------------------------------------------------------------------------

    def send(self, line: str) -> None:
        """Write one command line to the node's stdin."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        """Close the node's stdin (EOF): a headless node keeps running."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()

    def command(
        self, line: str, timeout: float = DEFAULT_TIMEOUT, *, ok: bool | None = True
    ) -> Event:
        """Send a command and return its ``command_output`` event (asserting ``ok`` if given)."""
        name = line.split()[0] if line.split() else ""
        since = self.mark()
        self.send(line)
        out = self.wait_for(
            is_event("command_output", command=name), timeout, since, what=f"output of {line!r}"
        )
        if ok is not None:
            assert out["ok"] is ok, f"{self.name}: {line!r} -> {out}"
        return out

    # -- state -----------------------------------------------------------------------------------

    @property
    def ready(self) -> Event | None:
        return self.find(is_event("ready"))

    @property
    def peer_id(self) -> str:
        ready = self.ready
        assert ready is not None, f"{self.name} is not ready"
        return ready["peer_id"]

    @property
    def addr(self) -> str:
        ready = self.ready
        assert ready is not None, f"{self.name} is not ready"
        return ready["addrs"][0]

    def peer_ids(self) -> set[str]:
        """Peers this node currently believes online (replaying peer_joined/peer_left)."""
        online: set[str] = set()
        with self.swarm.cond:
            for e in self.events:
                if e.get("event") == "peer_joined":
                    online.add(e["peer_id"])
                elif e.get("event") == "peer_left":
                    online.discard(e["peer_id"])
        return online

    def last(self, kind: str) -> Event | None:
        with self.swarm.cond:
            for e in reversed(self.events):
                if e.get("event") == kind:
                    return e
        return None

    def tail(self, n: int = 15) -> str:
        with self.swarm.cond:
            lines = [
                json.dumps({k: v for k, v in e.items() if k != "_t"})[:300]
                for e in self.events[-n:]
            ]
            err = self.stderr_lines[-5:]
        out = "\n".join(f"  {line}" for line in lines)
        if err:
            out += "\n  stderr: " + "\n  stderr: ".join(err)
        return out

    # -- stopping --------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait for the exit code."""
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def kill(self) -> None:
        """SIGKILL (kill -9), no cleanup on the node's side."""
        if self.alive:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def wait_exit(self, timeout: float = 10.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(
                f"{self.name} did not exit within {timeout} s\n{self.tail()}"
            ) from None

    def close(self) -> None:
        if self.alive:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


class Swarm:
    """Bootstrap + providers as subprocesses; use as a context manager (kills all on exit)."""

    def __init__(
        self,
        workdir: Path,
        *,
        env: dict[str, str] | None = None,
        bootstrap_port: int | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_root = self.workdir / "data"
        self.bootstrap_port = bootstrap_port or free_port()
        self.bootstrap_maddr = demo_bootstrap_maddr(self.bootstrap_port)
        self.extra_env = dict(env or {})
        self.cond = threading.Condition()
        self.nodes: list[NodeProc] = []
        self.bootstrap: NodeProc | None = None
        self._provider_count = 0

    def __enter__(self) -> Swarm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def env(self) -> dict[str, str]:
        return child_env(
            data_root=self.data_root,
            bootstrap_node=self.bootstrap_maddr,
            extra={"RNET_BACKEND": "sim", **self.extra_env},
        )

    def spawn(
        self, subcommand: str, name: str, args: Sequence[str] = (), role: str = "provider"
    ) -> NodeProc:
        """Start ``python -m node <subcommand> --no-ui --json --name <name> <args>``."""
        node = NodeProc(self, name, role, node_argv(subcommand, name, args), self.env())
        self.nodes.append(node)
        return node

    def start_bootstrap(
        self, args: Iterable[str] = (), *, wait: bool = True, timeout: float = DEFAULT_TIMEOUT
    ) -> NodeProc:
        node = self.spawn(
            "bootstrap", "bootstrap", ["--port", str(self.bootstrap_port), *args], "bootstrap"
        )
        self.bootstrap = node
        if wait:
            node.wait_ready(timeout)
        return node

    def start_provider(
        self,
        name: str | None = None,
        args: Iterable[str] = (),
        *,
        wait: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> NodeProc:
        if name is None:
            self._provider_count += 1
            name = f"p{self._provider_count}"
        node = self.spawn("node", name, list(args), "provider")
        if wait:
            node.wait_ready(timeout)
        return node

    def start_providers(
        self,
        n: int,
        args: Iterable[str] = (),
        *,
        wait: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> list[NodeProc]:
        """Start ``n`` providers at once (then wait for all of them to be ready)."""
        args = list(args)
        nodes = [self.start_provider(None, args, wait=False) for _ in range(n)]
        if wait:
            for node in nodes:
                node.wait_ready(timeout)
        return nodes

    def restart(self, node: NodeProc, *, kill: bool = False, wait: bool = True) -> NodeProc:
        """Stop ``node`` (SIGTERM, or SIGKILL with ``kill``) and start it again, same name/key."""
        if kill:
            node.kill()
        else:
            node.terminate()
        node.close()
        fresh = NodeProc(self, node.name, node.role, node.argv, self.env())
        self.nodes.append(fresh)
        if node is self.bootstrap:
            self.bootstrap = fresh
        if wait:
            fresh.wait_ready()
        return fresh

    @property
    def providers(self) -> list[NodeProc]:
        return [n for n in self.nodes if n.role == "provider" and n.alive]

    def _wait(self, check: Callable[[], bool], timeout: float, describe: Callable[[], str]) -> None:
        wait_on(self.cond, check, timeout, describe, AssertionError)

    def wait_until(
        self, condition: Callable[[], bool], timeout: float = DEFAULT_TIMEOUT, what: str = ""
    ) -> None:
        """Wait until ``condition()`` (re-evaluated on every event of any node) holds."""
        self._wait(condition, timeout, lambda: what or getattr(condition, "__name__", "condition"))

    def close(self) -> None:
        for node in reversed(self.nodes):
            node.close()
