"""The flags of the network guard and of closed swarms (flag > environment/.env > default).

Bootstrap (the hub): ``--peer-rate``, ``--peer-burst``, ``--strikes``, ``--block-for``,
``--max-conns-per-ip``, ``--cap-loopback``, ``--max-new-peers``, ``--relay-peer``.
Every node: ``--max-topics-per-peer``, ``--members``.
"""

from __future__ import annotations

import argparse
from typing import Any

from node.errors import ConfigError
from node.net.guard import GuardConfig
from node.settings import Environment
from protocol.errors import IdentityError
from protocol.identity import peer_id_from_str

__all__ = ["MEMBERS_MODES", "add_guard_flags", "guard_config_from_args", "members_mode_from_args"]

MEMBERS_MODES = ("open", "required")
_DEFAULTS = GuardConfig()


def add_guard_flags(parser: argparse.ArgumentParser, *, bootstrap: bool) -> None:
    """Add the guard's flags; the hub-only ones are hidden on other commands."""
    g = parser.add_argument_group("abuse limits" if bootstrap else "closed swarm")
    hub_help = (lambda text: text) if bootstrap else (lambda text: argparse.SUPPRESS)
    g.add_argument(
        "--members",
        choices=MEMBERS_MODES,
        default=None,
        help="'required': a closed swarm; only peers with a membership certificate from the "
        "bootstrap take part (see `rnet member`) (default: open; $RNET_MEMBERS)",
    )
    g.add_argument(
        "--max-topics-per-peer",
        type=int,
        default=None,
        metavar="N",
        help=f"refuse a peer's subscriptions past N topics (default: {_DEFAULTS.max_topics_per_peer})",
    )
    g.add_argument(
        "--peer-rate",
        type=float,
        default=None,
        metavar="N",
        help=hub_help(
            f"relay at most N messages a second per peer; 0: no limit (default: "
            f"{_DEFAULTS.rate:g}; $RNET_PEER_RATE)"
        ),
    )
    g.add_argument(
        "--peer-burst",
        type=float,
        default=None,
        metavar="N",
        help=hub_help(f"...with bursts of up to N messages (default: {_DEFAULTS.burst:g})"),
    )
    g.add_argument(
        "--strikes",
        type=int,
        default=None,
        metavar="N",
        help=hub_help(
            f"block a peer that sends N invalid messages within "
            f"{_DEFAULTS.strike_window_s:g} s (default: {_DEFAULTS.strikes})"
        ),
    )
    g.add_argument(
        "--block-for",
        type=float,
        default=None,
        metavar="S",
        help=hub_help(f"how long a block lasts, in seconds (default: {_DEFAULTS.block_s:g})"),
    )
    g.add_argument(
        "--max-conns-per-ip",
        type=int,
        default=None,
        metavar="N",
        help=hub_help(
            f"at most N connections from one IP address; 0: no cap; loopback is exempt "
            f"(default: {_DEFAULTS.max_conns_per_ip}; $RNET_MAX_CONNS_PER_IP)"
        ),
    )
    g.add_argument(
        "--cap-loopback",
        action="store_true",
        default=None,
        help=hub_help("apply --max-conns-per-ip to loopback addresses too"),
    )
    g.add_argument(
        "--max-new-peers",
        type=int,
        default=None,
        metavar="N",
        help=hub_help(
            f"accept at most N peers never seen before per minute; 0: no cap (default: "
            f"{_DEFAULTS.max_new_peers_per_min}; $RNET_MAX_NEW_PEERS)"
        ),
    )
    g.add_argument(
        "--relay-peer",
        action="append",
        default=None,
        metavar="PEER_ID",
        help=hub_help("a peer allowed to forward other peers' messages (repeatable)"),
    )


def _number(env: Environment, flag: float | None, name: str, default: float) -> float:
    def parse(raw: str) -> float:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"${name} must be a number, not {raw!r}") from None

    return float(env.pick(flag, name, default, parse))


def guard_config_from_args(args: Any, env: Environment | None = None) -> GuardConfig:
    """The guard's settings from parsed flags (absent flags: environment, then defaults)."""
    env = Environment() if env is None else env
    d = _DEFAULTS

    def number(flag: str, name: str, default: float) -> float:
        return _number(env, getattr(args, flag, None), name, default)

    rate = number("peer_rate", "RNET_PEER_RATE", d.rate)
    burst = number("peer_burst", "RNET_PEER_BURST", d.burst)
    strikes = int(number("strikes", "RNET_STRIKES", d.strikes))
    block_s = number("block_for", "RNET_BLOCK_FOR", d.block_s)
    per_ip = int(number("max_conns_per_ip", "RNET_MAX_CONNS_PER_IP", d.max_conns_per_ip))
    new_peers = int(number("max_new_peers", "RNET_MAX_NEW_PEERS", d.max_new_peers_per_min))
    topics = int(number("max_topics_per_peer", "RNET_MAX_TOPICS_PER_PEER", d.max_topics_per_peer))
    if rate < 0 or burst < 1 or strikes < 1 or block_s < 0 or per_ip < 0 or new_peers < 0:
        raise ConfigError(
            "abuse limits: --peer-rate, --block-for, --max-conns-per-ip, --max-new-peers must be "
            ">= 0; --peer-burst and --strikes >= 1"
        )
    if topics < 2:
        raise ConfigError("--max-topics-per-peer must be at least 2")
    relays = set()
    for text in getattr(args, "relay_peer", None) or []:
        try:
            relays.add(peer_id_from_str(text))
        except IdentityError as exc:
            raise ConfigError(f"--relay-peer: {exc.message}") from None
    cap_loopback = getattr(args, "cap_loopback", None)
    if cap_loopback is None:
        cap_loopback = env.get("RNET_CAP_LOOPBACK", "").lower() in ("1", "true", "yes")
    return GuardConfig(
        rate=rate,
        burst=burst,
        strikes=strikes,
        block_s=block_s,
        max_conns_per_ip=per_ip,
        max_new_peers_per_min=new_peers,
        cap_loopback=bool(cap_loopback),
        max_topics_per_peer=topics,
        relays=frozenset(relays),
    )


def members_mode_from_args(args: Any, env: Environment | None = None) -> str:
    env = Environment() if env is None else env
    mode = env.pick(getattr(args, "members", None), "RNET_MEMBERS", "open")
    if mode not in MEMBERS_MODES:
        raise ConfigError(f"--members must be one of {', '.join(MEMBERS_MODES)}, not {mode!r}")
    return mode
