"""Which addresses this node announces, and in which order it dials the addresses of a peer.

Announcing. A node listening on a wildcard (``--host 0.0.0.0``) is reachable at every address of
every interface, and libp2p would announce ``0.0.0.0`` itself (pitfall 9). One guessed address
(the default route's) is wrong on a LAN without a default route (it was ``127.0.0.1``, so no
direct link ever formed) and on a machine with several networks (Docker bridges, a VPN, Wi-Fi
plus Ethernet). So the node announces, in this order:

1. every ``--announce`` address (the operator knows best: port forwarding, a public IP);
2. each non-loopback interface address, the default route's first;
3. addresses peers have seen us at (libp2p identify's observed address, confirmed by more than
   one peer) with our listen port, when they are not an interface address (a NAT in front);
4. loopback only when there is nothing else (same-host peers can still dial it).

A node listening on a concrete address announces that address (plus 1 and 3).

Dialing. A peer's addresses (validated by :mod:`protocol.addresses`) are tried one at a time:
first the one that worked last time; a loopback address first only when the peer is on this host
(it shares one of our interface addresses); then addresses in one of our own subnets; then the
rest in the order the peer gave them (its ``--announce`` and interface addresses first, observed
last); loopback of another host last. Link-local addresses outside our own link are skipped. An
address that failed recently goes after those that did not. A peer none of whose addresses
answered is left alone for a while (30 s, doubling up to 10 min), and automatic dials share a
token bucket (:class:`DialBudget`): no amount of peer-supplied addresses or re-announcements
makes a node dial fast or often.

Everything except :func:`local_interfaces` and :func:`default_route_ip` is pure (time passed in).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections import OrderedDict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from protocol.addresses import MAX_PEER_ADDRS, AddressError, DialAddr, parse_addr, peer_addrs

logger = logging.getLogger(__name__)

WILDCARD_HOSTS = ("0.0.0.0", "")
LOOPBACK_IP = "127.0.0.1"
MAX_OBSERVED = 2  # observed addresses announced at most (each one a guess)
FAILED_MEMORY_S = 60.0  # an address that failed goes to the back of the line this long
# A peer none of whose addresses answered is not dialed again for this long, doubling up to the
# cap: re-announcing itself must not make a peer (or its victim) get dialed over and over.
RETRY_PEER_S = 30.0
RETRY_PEER_MAX_S = 600.0


@dataclass(frozen=True, slots=True)
class Interface:
    """One IPv4 address of a local network interface, with its subnet."""

    name: str
    address: ipaddress.IPv4Interface

    @property
    def ip(self) -> ipaddress.IPv4Address:
        return self.address.ip

    @classmethod
    def of(cls, name: str, cidr: str) -> Interface:
        return cls(name, ipaddress.IPv4Interface(cidr))


def local_interfaces() -> list[Interface]:
    """Every IPv4 address of every local interface (loopback included).

    ``ifaddr`` (already installed: zeroconf, a libp2p dependency, uses it) wraps getifaddrs(3),
    which the standard library does not: ``socket.if_nameindex`` gives names but no addresses,
    and an ioctl per interface sees only its primary address.
    """
    import ifaddr

    out: list[Interface] = []
    try:
        adapters = ifaddr.get_adapters()
    except OSError as exc:
        logger.warning("cannot list the network interfaces: %s", exc)
        return out
    for adapter in adapters:
        for ip in adapter.ips:
            if not isinstance(ip.ip, str):  # IPv6 entries are tuples; we listen on IPv4 only
                continue
            try:
                out.append(Interface.of(adapter.nice_name, f"{ip.ip}/{ip.network_prefix}"))
            except ValueError:
                continue
    return out


def default_route_ip() -> str | None:
    """The local address of the default route's interface (None without a default route)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent; the kernel picks the route
            return str(s.getsockname()[0])
    except OSError:
        return None


def is_wildcard(host: str) -> bool:
    return host in WILDCARD_HOSTS


def parse_announce(text: str) -> str:
    """Validate one ``--announce`` value; returns it normalized. AddressError says why not."""
    return parse_addr(text.strip()).text()


def announced_addrs(
    listen_host: str,
    port: int,
    interfaces: Sequence[Interface],
    *,
    default_ip: str | None = None,
    observed: Iterable[str] = (),
    extra: Iterable[str] = (),
    limit: int = MAX_PEER_ADDRS,
) -> list[str]:
    """This node's addresses to announce, as ``/ip4/A/tcp/P`` (see the module docstring).

    ``observed``: IPs peers saw us at; ``extra``: the ``--announce`` addresses (validated).
    """
    out: list[str] = []
    if port <= 0:
        return out  # not listening (yet)

    def add(ip: str, p: int = port) -> None:
        text = f"/ip4/{ip}/tcp/{p}"
        if text not in out:
            out.append(text)

    for text in extra:
        try:
            addr = parse_addr(text)
        except AddressError:
            continue
        add(str(addr.ip), addr.port)
    own = [i.ip for i in interfaces if not i.ip.is_loopback]
    if not is_wildcard(listen_host):
        add(listen_host)
    else:
        # the default route's interface first, then the others as listed; link-local last
        order = sorted(own, key=lambda ip: (str(ip) != default_ip, ip.is_link_local, own.index(ip)))
        for ip in order:
            add(str(ip))
    for text in list(observed)[:MAX_OBSERVED]:
        try:
            ip = ipaddress.IPv4Address(text)
        except ValueError:
            continue
        if ip in own or ip.is_loopback or ip.is_unspecified or ip.is_multicast:
            continue
        add(str(ip))
    if is_wildcard(listen_host) and not own:
        add(LOOPBACK_IP)
    return out[:limit]


def with_seen_at(addrs: Sequence[str], peer_id: str, remote_ip: str) -> list[str]:
    """A peer's announced ``addrs`` plus the IP our connection with it comes from (the
    bootstrap's view of a peer behind a NAT), at the port it announced first."""
    valid, _ = peer_addrs(addrs, peer_id)
    out = [a.text() for a in valid]
    try:
        ip = ipaddress.IPv4Address(remote_ip)
    except ValueError:
        return out
    if not valid or ip.is_loopback or any(a.ip == ip for a in valid):
        return out
    seen = parse_addr(f"/ip4/{ip}/tcp/{valid[0].port}/p2p/{peer_id}", peer_id=peer_id)
    return [*out, seen.text()] if len(out) < MAX_PEER_ADDRS else out


def only_loopback(addrs: Iterable[str]) -> bool:
    """True when every address (at least one) is a loopback address."""
    seen = False
    for text in addrs:
        seen = True
        if not text.startswith("/ip4/127."):
            return False
    return seen


def startup_notes(listen_host: str, port: int, announced: Sequence[str]) -> list[tuple[int, str]]:
    """What a node says at start about its addresses: (logging level, message) pairs."""
    where = f"{listen_host or '0.0.0.0'}:{port}"
    line = f"listening on {where}; announcing {' '.join(announced) or '-'}"
    if listen_host.startswith("127."):
        line += " (loopback: this machine only; --host 0.0.0.0 lets other machines in)"
    notes = [(logging.INFO, line)]
    if is_wildcard(listen_host) and only_loopback(announced):
        notes.append(
            (
                logging.WARNING,
                f"listening on {where} but the only address to announce is loopback: no "
                "network interface has an IPv4 address, so peers on other machines cannot dial "
                "this node (bring a network up, or give --announce /ip4/ADDR/tcp/PORT)",
            )
        )
    return notes


def dial_order(
    candidates: Sequence[DialAddr],
    interfaces: Sequence[Interface],
    *,
    worked: DialAddr | None = None,
    failed: Collection[DialAddr] = (),
) -> list[DialAddr]:
    """The order in which to try ``candidates`` (one peer's addresses); see the docstring."""
    own = [i for i in interfaces if not i.ip.is_loopback]
    own_ips = {i.ip for i in own}
    same_host = any(c.ip in own_ips for c in candidates)

    def rank(addr: DialAddr) -> int | None:
        if addr == worked:
            return 0
        if addr.is_loopback:
            return 1 if same_host else 4
        if any(addr.ip in i.address.network for i in own):
            return 2
        if addr.is_link_local:
            return None  # another link's link-local address: unreachable from here
        return 3

    ranked = []
    for index, addr in enumerate(candidates):
        r = rank(addr)
        if r is not None:
            ranked.append((r, addr in failed, index, addr))
    ranked.sort(key=lambda t: t[:3])
    return [t[3] for t in ranked]


class DialMemory:
    """Per peer: the address that worked last, and addresses that failed recently (bounded)."""

    def __init__(self, *, max_peers: int = 1024, failed_for_s: float = FAILED_MEMORY_S) -> None:
        self._worked: OrderedDict[str, DialAddr] = OrderedDict()
        self._failed: OrderedDict[tuple[str, DialAddr], float] = OrderedDict()
        self._unreachable: OrderedDict[str, tuple[float, float]] = OrderedDict()  # until, backoff
        self._max_peers = max_peers
        self._failed_for_s = failed_for_s

    def may_dial(self, peer: str, now: float) -> bool:
        """False while ``peer`` is in its back-off after a round in which nothing answered."""
        entry = self._unreachable.get(peer)
        return entry is None or now >= entry[0]

    def unreachable(self, peer: str, now: float) -> float:
        """Nothing of ``peer`` answered: back off (doubling); returns the seconds to wait."""
        _, last = self._unreachable.pop(peer, (0.0, RETRY_PEER_S / 2))
        backoff = min(last * 2, RETRY_PEER_MAX_S)
        self._unreachable[peer] = (now + backoff, backoff)
        while len(self._unreachable) > self._max_peers:
            self._unreachable.popitem(last=False)
        return backoff

    def order(
        self,
        peer: str,
        candidates: Sequence[DialAddr],
        interfaces: Sequence[Interface],
        now: float,
    ) -> list[DialAddr]:
        failed = {
            a for a in candidates if now - self._failed.get((peer, a), -1e18) < self._failed_for_s
        }
        return dial_order(candidates, interfaces, worked=self._worked.get(peer), failed=failed)

    def worked(self, peer: str, addr: DialAddr) -> None:
        self._worked[peer] = addr
        self._worked.move_to_end(peer)
        self._failed.pop((peer, addr), None)
        self._unreachable.pop(peer, None)
        while len(self._worked) > self._max_peers:
            self._worked.popitem(last=False)

    def failed(self, peer: str, addr: DialAddr, now: float) -> None:
        if self._worked.get(peer) == addr:
            del self._worked[peer]
        self._failed[(peer, addr)] = now
        self._failed.move_to_end((peer, addr))
        while len(self._failed) > self._max_peers * MAX_PEER_ADDRS:
            self._failed.popitem(last=False)

    def address_of(self, peer: str) -> DialAddr | None:
        """The address that worked last for ``peer``, if any."""
        return self._worked.get(peer)


class DialBudget:
    """A token bucket for automatic dials: ``rate`` per second, bursts of ``burst``."""

    def __init__(self, rate: float = 4.0, burst: int = 8) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._at: float | None = None

    def wait_s(self, now: float) -> float:
        """Take one dial; returns how long to wait before making it (0: at once)."""
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
