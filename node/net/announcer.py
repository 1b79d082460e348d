"""What a libp2p host tells peers to dial: the ``addrs_factory`` of :class:`~node.net.host.SwarmHost`.

libp2p asks the factory on every identify exchange (and once in ``new_host``, before the host
exists) with its own candidates: the listen addresses, ``0.0.0.0`` included (pitfall 9), plus
observed addresses once four peers agree. :class:`Announcer` answers with the list
:func:`node.net.reach.announced_addrs` builds from the interfaces (re-read at most every few
seconds), the default route, observed addresses two peers agree on, and ``--announce``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import multiaddr
from libp2p.abc import IHost

from node.net.reach import Interface, announced_addrs, default_route_ip, local_interfaces

logger = logging.getLogger(__name__)

INTERFACES_TTL_S = 5.0  # the interface list is re-read at most this often (identify asks a lot)
# An observed address is announced once this many distinct peers (by IP) reported it: one lying
# peer cannot make us announce an address of its choosing. (libp2p's own threshold, 4, is more
# peers than a small swarm has.)
OBSERVED_MIN_PEERS = 2


class Announcer:
    def __init__(self, listen_host: str, extra: Sequence[str] = ()) -> None:
        self.listen_host = listen_host
        self.extra = tuple(extra)  # --announce, validated by the config
        self.host: IHost | None = None  # set once libp2p's host exists
        self._local: tuple[float, list[Interface], str | None] | None = None

    def factory(self, candidates: list[multiaddr.Multiaddr]) -> list[multiaddr.Multiaddr]:
        """libp2p's ``addrs_factory``."""
        try:
            return [multiaddr.Multiaddr(a) for a in self.announced(tcp_port(candidates))]
        except Exception:  # never break identify over an address: fall back to libp2p's view
            logger.exception("computing the announced addresses failed")
            return [a for a in candidates if "/ip4/0.0.0.0/" not in str(a)]

    def announced(self, port: int | None = None) -> list[str]:
        """What peers should dial, ``/ip4/A/tcp/P`` (see :mod:`node.net.reach`)."""
        interfaces, default_ip = self._local_view()
        return announced_addrs(
            self.listen_host,
            self.bound_port() if port is None else port,
            interfaces,
            default_ip=default_ip,
            observed=self.observed_ips(),
            extra=self.extra,
        )

    def bound_port(self) -> int:
        """The TCP port we listen on (0 while not listening)."""
        return tcp_port(self.host.get_transport_addrs()) if self.host is not None else 0

    def interfaces(self) -> list[Interface]:
        """This machine's IPv4 interface addresses (loopback included)."""
        return self._local_view()[0]

    def observed_ips(self) -> list[str]:
        """IPs that at least ``OBSERVED_MIN_PEERS`` peers saw us at (libp2p identify)."""
        # private to libp2p (the host modules are the adapter): the manager keeps per-peer counts
        manager = getattr(self.host, "_observed_addr_manager", None)
        if manager is None:
            return []
        out = []
        for addr in manager.addrs(min_observers=OBSERVED_MIN_PEERS):
            try:
                out.append(addr.value_for_protocol("ip4"))
            except Exception:
                continue  # an IPv6 observation: we listen on IPv4 only
        return out

    def _local_view(self) -> tuple[list[Interface], str | None]:
        now = time.monotonic()
        if self._local is None or now - self._local[0] > INTERFACES_TTL_S:
            self._local = (now, local_interfaces(), default_route_ip())
        return self._local[1], self._local[2]


def tcp_port(addrs: Sequence[multiaddr.Multiaddr]) -> int:
    """The TCP port of the first address that has one (0: none)."""
    for addr in addrs:
        try:
            return int(addr.value_for_protocol("tcp"))
        except Exception:
            continue
    return 0
