"""A LAN of Linux network namespaces for tests: each host its own network stack, on bridges.

Every other multi-node test runs on 127.0.0.1, where any announced address works. Here each
host is a network namespace with its own interfaces and routes, linked by veth pairs to bridges
that live in a namespace of their own; node processes run in their host's namespace through
``ip netns exec``. Nothing is created in (or routed to) the machine's own network namespace:
veth pairs are created directly inside the namespaces, and the private addresses (10.231.x.0/24)
exist only there.

Names carry the creating process's id (``rnt<pid>x<n>-<host>``), so parallel runs never collide;
:meth:`Lab.close` deletes everything it made (call it in a ``finally``), and a new lab first
removes namespaces left by a run whose process no longer exists (a killed test run).

Needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN) and iproute2: :func:`unavailable` says why a machine
cannot run these tests, for a clear skip.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field

PREFIX = "rnt"
_NAME = re.compile(rf"^{PREFIX}(\d+)x\d+-")
_counter = itertools.count(1)


class LabError(RuntimeError):
    """An ``ip`` command failed while building or tearing down the lab."""


def ip(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def unavailable() -> str | None:
    """Why network namespaces cannot be used here (None: they can)."""
    if sys.platform != "linux":
        return "network namespaces are Linux-only"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2) to create network namespaces"
    if os.geteuid() != 0:
        return "creating network namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN)"
    probe = f"{PREFIX}{os.getpid()}x0-probe"
    try:
        ip("netns", "add", probe)
        try:
            ip("-n", probe, "link", "add", "br0", "type", "bridge")
            ip("-n", probe, "link", "add", "va", "type", "veth", "peer", "name", "vb")
        finally:
            ip("netns", "del", probe, check=False)
    except (LabError, OSError, subprocess.TimeoutExpired) as exc:
        return f"network namespaces are not allowed here ({exc})"
    return None


def sweep_stale() -> None:
    """Delete namespaces of earlier lab runs whose process is gone (a killed test run)."""
    for line in ip("netns", "list", check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        m = _NAME.match(name)
        if m is None or _alive(int(m.group(1))):
            continue
        _kill_inside(name)
        ip("netns", "del", name, check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_inside(ns: str) -> None:
    # only our own lab's namespaces get here: every process in them was started by a lab run
    for pid in ip("netns", "pids", ns, check=False).split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ValueError, ProcessLookupError, PermissionError):
            pass


@dataclass
class Host:
    """One machine of the lab: a namespace and its addresses (interface name -> CIDR)."""

    name: str
    ns: str
    addrs: dict[str, str] = field(default_factory=dict)

    def ip(self, dev: str | None = None) -> str:
        """The IPv4 address of ``dev`` (default: its first interface; loopback if none)."""
        if dev is None and not self.addrs:
            return "127.0.0.1"
        cidr = self.addrs[dev] if dev else next(iter(self.addrs.values()))
        return str(ipaddress.IPv4Interface(cidr).ip)

    def exec_prefix(self) -> list[str]:
        """Prefix for a command line that must run on this host."""
        return ["ip", "netns", "exec", self.ns]

    def run(self, *argv: str) -> str:
        proc = subprocess.run(
            [*self.exec_prefix(), *argv], capture_output=True, text=True, timeout=30
        )
        if proc.returncode != 0:
            raise LabError(f"{self.name}: {' '.join(argv)}: {proc.stderr.strip()}")
        return proc.stdout


class Lab:
    """Hosts and bridges; use as a context manager (everything is deleted on exit)."""

    def __init__(self) -> None:
        self.tag = f"{PREFIX}{os.getpid()}x{next(_counter)}"
        self.switch = f"{self.tag}-switch"  # the namespace holding every bridge
        self.hosts: dict[str, Host] = {}
        self._bridges: set[str] = set()
        self._namespaces: list[str] = []
        self._veths = itertools.count(1)
        sweep_stale()
        self._add_ns(self.switch)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _add_ns(self, ns: str) -> None:
        ip("netns", "add", ns)
        self._namespaces.append(ns)
        ip("-n", ns, "link", "set", "lo", "up")

    def bridge(self, name: str) -> str:
        """A bridge (one LAN segment) in the switch namespace; created on first use."""
        if name not in self._bridges:
            ip("-n", self.switch, "link", "add", name, "type", "bridge")
            ip("-n", self.switch, "link", "set", name, "up")
            self._bridges.add(name)
        return name

    def host(self, name: str) -> Host:
        """A new host with only loopback (add interfaces with :meth:`wire`)."""
        ns = f"{self.tag}-{name}"
        self._add_ns(ns)
        host = self.hosts[name] = Host(name, ns)
        return host

    def wire(self, host: Host, dev: str, bridge: str, cidr: str) -> None:
        """Give ``host`` an interface ``dev`` with address ``cidr``, plugged into ``bridge``."""
        port = f"p{next(self._veths)}"
        self.bridge(bridge)
        # created inside the namespaces: the machine's own namespace never sees these links
        ip("-n", host.ns, "link", "add", dev, "type", "veth", "peer", "name", port,
           "netns", self.switch)  # fmt: skip
        ip("-n", self.switch, "link", "set", port, "master", bridge)
        ip("-n", self.switch, "link", "set", port, "up")
        ip("-n", host.ns, "addr", "add", cidr, "dev", dev)
        ip("-n", host.ns, "link", "set", dev, "up")
        host.addrs[dev] = cidr

    def default_route(self, host: Host, via: str) -> None:
        """A default route through a gateway nobody answers for (a LAN whose router is not
        part of the test): it only decides which interface the host calls its default."""
        ip("-n", host.ns, "route", "add", "default", "via", via)

    def close(self) -> None:
        for ns in reversed(self._namespaces):
            _kill_inside(ns)
            ip("netns", "del", ns, check=False)
        self._namespaces.clear()
