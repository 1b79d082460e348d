"""A swarm of real ``rnet`` node processes for the benchmarks (the deployment shape).

Bootstrap, providers and a leader are separate ``python -m node ... --no-ui --json`` processes
on loopback, each with its own data dir under one work dir; the bench drives them through stdin
command lines and reads their JSON event lines.

Unlike the test helper (``tests/node/swarm.py``) this one is built to stay out of the way of
what it measures, on a 2-core machine where the bench shares the CPU with the nodes: one reader
thread multiplexes every node's stdout with ``selectors`` (not two threads per node), and only
the event kinds a benchmark asks for are parsed (a session snapshot line is skipped by looking
at its first bytes). Every kept event carries ``_t``, the bench's ``time.monotonic()`` when its
line was read. Waits are bounded by deadlines; nothing sleeps a fixed time.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from node.localswarm import child_env, free_port, node_argv, wait_on

logger = logging.getLogger(__name__)

# Upper bounds for a loaded 2-core machine, not sleeps.
START_TIMEOUT_S = 90.0
DEFAULT_TIMEOUT_S = 60.0
# Idle: the nodes together used at most this share of one core over the window (wait_quiet).
QUIET_WINDOW_S = 0.1
QUIET_SHARE = 0.1
# Event kinds every node keeps parsed (the rest are only counted unless asked for).
BASE_KINDS = frozenset({"ready", "command_output", "error", "result"})

Event = dict[str, Any]


class BenchError(RuntimeError):
    """A benchmark could not run (a node died, a wait timed out); the message says which."""


def _kind_of(line: str) -> str:
    """The event kind of a ``{"event":"kind",...}`` line without parsing the whole line."""
    if line.startswith('{"event":"'):
        end = line.find('"', 10)
        if end > 10:
            return line[10:end]
    return ""


class Node:
    """One node process: its kept events, its stdin, its /proc figures."""

    def __init__(self, cluster: Cluster, name: str, role: str, argv: list[str]) -> None:
        self.cluster = cluster
        self.name = name
        self.role = role
        self.argv = argv
        self.events: list[Event] = []
        self.counts: dict[str, int] = {}
        self.lines = 0
        self.bytes_out = 0
        self.data_dir = cluster.data_root / name
        self.stderr_path = cluster.workdir / f"{name}.stderr"
        self._buf = b""
        self.started_at = time.monotonic()
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                argv,
                cwd=cluster.workdir,
                env=cluster.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    # -- reading (called by the cluster's reader thread) -----------------------------------------

    def _feed(self, chunk: bytes, now: float) -> None:
        self.bytes_out += len(chunk)
        self._buf += chunk
        if b"\n" not in chunk:
            return
        *lines, self._buf = self._buf.split(b"\n")
        kept: list[Event] = []
        for raw in lines:
            if not raw:
                continue
            self.lines += 1
            line = raw.decode("utf-8", "replace")
            kind = _kind_of(line)
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if kind and kind not in self.cluster.kinds:
                continue
            try:
                event = json.loads(line)
                if not isinstance(event, dict):
                    raise ValueError
            except ValueError:
                event = {"event": "_raw", "text": line}
            event["_t"] = now
            kept.append(event)
        if kept:
            with self.cluster.cond:
                self.events.extend(kept)
                self.cluster.cond.notify_all()

    # -- waiting ---------------------------------------------------------------------------------

    def mark(self) -> int:
        with self.cluster.cond:
            return len(self.events)

    def find(self, pred: Callable[[Event], bool], since: int = 0) -> Event | None:
        with self.cluster.cond:
            for e in self.events[since:]:
                if pred(e):
                    return e
        return None

    def wait_for(
        self,
        pred: Callable[[Event], bool],
        timeout: float = DEFAULT_TIMEOUT_S,
        since: int = 0,
        what: str = "an event",
    ) -> Event:
        found: list[Event] = []

        def check() -> bool:
            for e in self.events[since:]:
                if pred(e):
                    found.append(e)
                    return True
            if not self.alive:
                raise BenchError(f"{self.name} exited ({self.proc.returncode}) {self.tail()}")
            return False

        self.cluster.wait(check, timeout, f"{self.name}: {what}")
        return found[0]

    def wait_event(self, kind: str, timeout: float = DEFAULT_TIMEOUT_S, since: int = 0) -> Event:
        return self.wait_for(lambda e: e.get("event") == kind, timeout, since, what=kind)

    # -- commands --------------------------------------------------------------------------------

    def send(self, line: str) -> float:
        """Write one command line to the node's stdin; returns the bench time it was written."""
        assert self.proc.stdin is not None
        data = (line + "\n").encode("utf-8")
        t = time.monotonic()
        self.proc.stdin.write(data)
        self.proc.stdin.flush()
        return t

    def command(self, line: str, timeout: float = DEFAULT_TIMEOUT_S, *, ok: bool = True) -> Event:
        """Send a command and return its ``command_output`` event (``BenchError`` if not ok)."""
        name = line.split()[0]
        since = self.mark()
        self.send(line)
        out = self.wait_for(
            lambda e: e.get("event") == "command_output" and e.get("command") == name,
            timeout,
            since,
            what=f"output of {line!r}",
        )
        if ok and not out.get("ok"):
            raise BenchError(f"{self.name}: {line!r} failed: {out.get('text')}")
        return out

    # -- state -----------------------------------------------------------------------------------

    @property
    def ready(self) -> Event | None:
        return self.find(lambda e: e.get("event") == "ready")

    @property
    def peer_id(self) -> str:
        ready = self.ready
        if ready is None:
            raise BenchError(f"{self.name} is not ready")
        return str(ready["peer_id"])

    def tail(self, n: int = 5) -> str:
        with self.cluster.cond:
            events = [json.dumps(e)[:200] for e in self.events[-n:]]
        try:
            err = self.stderr_path.read_text(errors="replace").splitlines()[-5:]
        except OSError:
            err = []
        return "; ".join(events + [f"stderr: {line}" for line in err])

    def cpu_seconds(self) -> float:
        """user + system CPU time of the process so far (from /proc/<pid>/stat)."""
        return proc_cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        return proc_rss_bytes(self.pid)

    # -- stopping --------------------------------------------------------------------------------

    def close(self, timeout: float = 8.0) -> None:
        if self.alive:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass


def proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    # fields[11], fields[12] = utime, stime (fields 14 and 15 of proc(5)), in clock ticks
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Cluster:
    """Bootstrap + providers + leaders as subprocesses; a context manager that stops them all.

    ``kinds``: event kinds to parse and keep (besides ``BASE_KINDS``). ``node_args``: extra flags
    for every ``rnet node``. ``python_prefix``: argv inserted before ``-m node`` (profiling).
    """

    def __init__(
        self,
        *,
        kinds: Iterable[str] = (),
        workdir: Path | None = None,
        keep: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="rnet-bench-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_root = self.workdir / "data"
        self.keep = keep
        self.kinds = frozenset(kinds) | BASE_KINDS
        self.cond = threading.Condition()
        self.nodes: list[Node] = []
        self.bootstrap: Node | None = None
        self.bootstrap_port = free_port()
        self.bootstrap_maddr = ""
        self.env = self._base_env(env or {})
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._pending: list[Node] = []
        self._stopping = False
        self._reader = threading.Thread(target=self._read_loop, name="bench-reader", daemon=True)
        self._reader.start()
        self._provider_count = 0

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _base_env(self, extra: dict[str, str]) -> dict[str, str]:
        return child_env(data_root=self.data_root, extra={"RNET_BACKEND": "sim", **extra})

    # -- the reader thread -----------------------------------------------------------------------

    def _read_loop(self) -> None:
        while not self._stopping:
            for key, _ in self._selector.select(timeout=0.5):
                if key.data is None:
                    try:
                        os.read(self._wake_r, 4096)
                    except BlockingIOError:
                        pass
                    continue
                node: Node = key.data
                try:
                    chunk = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                now = time.monotonic()
                if not chunk:
                    self._selector.unregister(key.fd)
                    with self.cond:
                        self.cond.notify_all()
                    continue
                node._feed(chunk, now)
            with self.cond:
                pending, self._pending = self._pending, []
            for node in pending:
                assert node.proc.stdout is not None
                self._selector.register(node.proc.stdout.fileno(), selectors.EVENT_READ, node)

    def _add(self, node: Node) -> Node:
        with self.cond:
            self.nodes.append(node)
            self._pending.append(node)
        os.write(self._wake_w, b"x")
        return node

    def wait(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        wait_on(self.cond, check, timeout, lambda: what, BenchError)

    def wait_quiet(
        self,
        window_s: float = QUIET_WINDOW_S,
        max_share: float = QUIET_SHARE,
        timeout: float = 10.0,
    ) -> float:
        """Wait until the nodes are idle: their CPU time together grew by at most ``max_share``
        of one core over the last ``window_s``. Returns the seconds waited (``timeout`` when
        they never were: the caller measures on a busy swarm then, and a warning says so).

        What a node does after a session (its transcript stored, the session re-verified and
        counted by its reputation book) takes the CPU for a while after the result line; a floor
        broadcast sampled in that tail measures the tail, not the network (at N=24 it read
        ~200 ms instead of ~40). Idle nodes use next to nothing (heartbeats), so this is quick.
        """
        started = time.monotonic()
        deadline = started + timeout
        last = self._cpu_total()
        while True:
            time.sleep(window_s)  # the window the CPU is measured over, not a settle delay
            now_cpu = self._cpu_total()
            if now_cpu - last <= max_share * window_s:
                return time.monotonic() - started
            if time.monotonic() >= deadline:
                logger.warning("the nodes stayed busy for %.0f s; measuring anyway", timeout)
                return timeout
            last = now_cpu

    def _cpu_total(self) -> float:
        total = 0.0
        for node in self.nodes:
            try:
                total += node.cpu_seconds() if node.alive else 0.0
            except OSError:
                pass  # it just exited
        return total

    # -- starting nodes --------------------------------------------------------------------------

    def spawn(
        self,
        subcommand: str,
        name: str,
        args: Sequence[str] = (),
        role: str = "provider",
        python_prefix: Sequence[str] = (),
    ) -> Node:
        argv = node_argv(subcommand, name, args, python_prefix=python_prefix)
        return self._add(Node(self, name, role, argv))

    def start_bootstrap(self, python_prefix: Sequence[str] = ()) -> Node:
        node = self.spawn(
            "bootstrap",
            "bootstrap",
            ["--port", str(self.bootstrap_port)],
            "bootstrap",
            python_prefix,
        )
        node.wait_event("ready", START_TIMEOUT_S)
        self.bootstrap = node
        self.bootstrap_maddr = f"/ip4/127.0.0.1/tcp/{self.bootstrap_port}/p2p/{node.peer_id}"
        self.env["BOOTSTRAP_NODE"] = self.bootstrap_maddr
        return node

    def start_nodes(
        self,
        names: Sequence[str],
        args: Sequence[str] = (),
        *,
        role: str = "provider",
        python_prefix: Sequence[str] | Callable[[str], Sequence[str]] = (),
    ) -> list[Node]:
        """Start ``rnet node`` processes together, then wait until every one is ready.

        ``python_prefix``: argv between the interpreter and ``-m node`` (e.g. cProfile), or a
        function of the node name giving it.
        """
        if self.bootstrap is None:
            raise BenchError("start the bootstrap first")
        nodes = []
        for name in names:
            prefix = python_prefix(name) if callable(python_prefix) else python_prefix
            nodes.append(self.spawn("node", name, args, role, prefix))
        for node in nodes:
            node.wait_event("ready", START_TIMEOUT_S)
        return nodes

    def add_providers(
        self,
        n: int,
        args: Sequence[str] = (),
        python_prefix: Sequence[str] | Callable[[str], Sequence[str]] = (),
    ) -> list[Node]:
        """``n`` more providers named p<k> (k continues from the last one)."""
        names = []
        for _ in range(n):
            self._provider_count += 1
            names.append(f"p{self._provider_count}")
        return self.start_nodes(names, args, python_prefix=python_prefix)

    @property
    def providers(self) -> list[Node]:
        return [n for n in self.nodes if n.role == "provider" and n.alive]

    # -- stopping --------------------------------------------------------------------------------

    def close(self) -> None:
        # Everyone but the bootstrap first (all signalled at once, then awaited), the bootstrap
        # last, so nobody spends its exit reconnecting.
        others = [n for n in self.nodes if n is not self.bootstrap]
        for node in others:
            if node.alive:
                node.proc.send_signal(signal.SIGTERM)
        for node in [*others, *([self.bootstrap] if self.bootstrap else [])]:
            try:
                node.close()
            except Exception:
                logger.exception("closing %s failed", node.name)
        self._stopping = True
        os.write(self._wake_w, b"x")
        self._reader.join(timeout=2)
        self._selector.close()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        for node in self.nodes:
            if node.proc.stdout is not None:
                node.proc.stdout.close()
        if self._own_workdir and not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
