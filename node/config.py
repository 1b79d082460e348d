"""Node configuration: the shared node flags and their resolution into a :class:`NodeConfig`.

Precedence is flag > environment > ``.env`` > default, applied by :mod:`node.settings`. Flags
default to ``None`` so "not given" can be told from "given the default".
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from node.errors import ConfigError
from node.net.reach import parse_announce
from node.settings import Environment, default_data_dir, user_data_root
from node.slm.config import add_backend_flags
from protocol.addresses import MAX_PEER_ADDRS, AddressError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_BOOTSTRAP_PORT = 8888

# The demo pair shipped in .env.example (a test proves these three agree). Public, so only for a
# local demo swarm: a real deployment makes its own with `rnet keygen`.
DEMO_BOOTSTRAP_KEY = "ca5b2ca0ebc977128c80354266146b8561423fcc67bd383c89e693d7bbc63697"
DEMO_BOOTSTRAP_NODE = (
    "/ip4/127.0.0.1/tcp/8888/p2p/12D3KooWPvoF9HfWisUgV2P7A5fq7wW2CAAqzZE45sVbKdxGRv5s"
)

LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_MAX_DIALS = 2
DEFAULT_ROUTER = "floodsub"
DEFAULT_LOG_LEVEL = "info"
DEFAULT_HUNG_AFTER_S = 15.0


def add_node_flags(parser: argparse.ArgumentParser, *, role: str = "provider") -> None:
    """The flags every node command shares (node, bootstrap, pipe, up, serve, slm)."""
    g = parser.add_argument_group("node")
    g.add_argument(
        "--name",
        default=None,
        help=f"node name, also its data subdirectory (default: {'bootstrap' if role == 'bootstrap' else 'node, node-2, ... whichever is free'})",
    )
    g.add_argument(
        "--data-dir",
        default=None,
        type=Path,
        help="where this node keeps its key and store (default: $RNET_DATA_DIR or "
        "$XDG_DATA_HOME/rnet or ~/.local/share/rnet, then /<name>)",
    )
    bootstrap = role == "bootstrap"
    # Provider-only flags stay accepted on the bootstrap (launchers pass one flag set to every
    # node) but are hidden from its --help: it dials nobody and runs no model.
    g.add_argument(
        "--bootstrap",
        default=None,
        metavar="MADDR",
        help=argparse.SUPPRESS
        if bootstrap
        else "bootstrap multiaddr /ip4/../tcp/../p2p/.. (default: $BOOTSTRAP_NODE, else the "
        "demo bootstrap on 127.0.0.1:8888)",
    )
    g.add_argument("--host", default=None, help=f"address to listen on (default: {DEFAULT_HOST})")
    g.add_argument(
        "--port",
        default=None,
        type=int,
        help=f"TCP port to listen on (default: {DEFAULT_BOOTSTRAP_PORT})"
        if bootstrap
        else "TCP port to listen on (default: $RNET_PORT, else a free one)",
    )
    g.add_argument(
        "--announce",
        action="append",
        default=None,
        metavar="MADDR",
        help="also tell peers to dial /ip4/ADDR/tcp/PORT (repeatable): a forwarded port or a "
        "public address. Listening on 0.0.0.0 already announces every interface address and "
        "addresses peers see this node at ($RNET_ANNOUNCE, space-separated)",
    )
    g.add_argument(
        "--router",
        choices=("floodsub", "gossipsub"),
        default=None,
        help=f"pubsub router (default: {DEFAULT_ROUTER}; $RNET_ROUTER)",
    )
    g.add_argument(
        "--max-dials",
        type=int,
        default=None,
        help=argparse.SUPPRESS
        if bootstrap
        else "at most this many providers learned from the bootstrap are dialed directly "
        f"(default: {DEFAULT_MAX_DIALS}; $RNET_MAX_DIALS; 0 = star only). While the bootstrap is reachable all "
        "traffic goes through it; the direct links carry the messages when it is not",
    )
    g.add_argument(
        "--hung-after",
        type=float,
        default=None,
        metavar="S",
        help="drop a connected peer that has not answered pings for S seconds "
        f"(default: {DEFAULT_HUNG_AFTER_S:g}; $RNET_HUNG_AFTER)",
    )
    g.add_argument("--json", action="store_true", help="headless: one JSON object per event line")
    g.add_argument("--no-ui", action="store_true", help="run headless (no console)")
    g.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=None,
        help=f"log verbosity (default: {DEFAULT_LOG_LEVEL}; $RNET_LOG_LEVEL)",
    )
    before = len(parser._actions)
    add_backend_flags(parser)
    if bootstrap:
        for action in parser._actions[before:]:
            action.help = argparse.SUPPRESS


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Resolved settings for one node process."""

    role: str  # "bootstrap" | "provider"
    name: str
    data_dir: Path
    host: str
    port: int
    bootstrap: str | None  # provider: the bootstrap multiaddr
    bootstrap_key: str | None  # bootstrap: hex seed
    router: str
    max_dials: int
    json: bool
    log_level: str
    hung_after: float = DEFAULT_HUNG_AFTER_S
    name_explicit: bool = True
    data_dir_explicit: bool = False  # --data-dir given: --name does not choose the directory
    announce: tuple[str, ...] = ()  # extra /ip4/A/tcp/P addresses to announce (--announce)


def _whole(name: str) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None

    return parse


def _seconds(name: str) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number of seconds") from None

    return parse


def resolve_node_config(
    args: argparse.Namespace, role: str, env: Environment | None = None
) -> NodeConfig:
    """Apply flag > environment > .env > default to the parsed node flags."""
    env = Environment() if env is None else env
    name = getattr(args, "name", None)
    name_explicit = bool(name)
    if not name:
        name = "bootstrap" if role == "bootstrap" else "node"
    if "/" in name or name in (".", ".."):
        raise ConfigError(f"--name must be a plain name, not a path: {name!r}")
    data_dir = getattr(args, "data_dir", None)
    data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir(name, env)
    host = env.pick(getattr(args, "host", None), "RNET_HOST", DEFAULT_HOST)
    port = getattr(args, "port", None)
    if port is None:
        if role == "bootstrap":
            port = DEFAULT_BOOTSTRAP_PORT
        else:
            port = env.pick(None, "RNET_PORT", 0, _whole("RNET_PORT"))
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port out of range: {port}")
    announce = _announce(env.pick(getattr(args, "announce", None), "RNET_ANNOUNCE", [], _words))
    bootstrap = env.pick(getattr(args, "bootstrap", None), "BOOTSTRAP_NODE", DEMO_BOOTSTRAP_NODE)
    bootstrap_key = env.pick(None, "BOOTSTRAP_KEY", DEMO_BOOTSTRAP_KEY)
    router = env.pick(getattr(args, "router", None), "RNET_ROUTER", DEFAULT_ROUTER)
    if router not in ("floodsub", "gossipsub"):
        raise ConfigError(f"unknown pubsub router {router!r} (floodsub or gossipsub)")
    max_dials = env.pick(
        getattr(args, "max_dials", None),
        "RNET_MAX_DIALS",
        DEFAULT_MAX_DIALS,
        _whole("RNET_MAX_DIALS"),
    )
    if max_dials < 0:
        raise ConfigError("--max-dials must be >= 0")
    hung_after = env.pick(
        getattr(args, "hung_after", None),
        "RNET_HUNG_AFTER",
        DEFAULT_HUNG_AFTER_S,
        _seconds("RNET_HUNG_AFTER"),
    )
    if not 1.0 <= hung_after <= 3600.0:
        raise ConfigError("--hung-after must be between 1 and 3600 seconds")
    log_level = env.pick(getattr(args, "log_level", None), "RNET_LOG_LEVEL", DEFAULT_LOG_LEVEL)
    if log_level.lower() not in LOG_LEVELS:
        raise ConfigError(f"unknown log level {log_level!r}")
    return NodeConfig(
        role=role,
        name=name,
        data_dir=data_dir,
        host=host,
        port=port,
        bootstrap=None if role == "bootstrap" else bootstrap,
        bootstrap_key=bootstrap_key if role == "bootstrap" else None,
        router=router,
        max_dials=max_dials,
        hung_after=hung_after,
        json=bool(getattr(args, "json", False)),
        log_level=log_level.lower(),
        name_explicit=name_explicit or bool(getattr(args, "data_dir", None)),
        data_dir_explicit=bool(getattr(args, "data_dir", None)),
        announce=announce,
    )


def _words(raw: str) -> list[str]:
    return raw.replace(",", " ").split()


def _announce(texts: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for text in texts:
        try:
            addr = parse_announce(text)
        except AddressError as exc:
            raise ConfigError(f"--announce {text!r}: {exc}") from None
        if addr not in out:
            out.append(addr)
    if len(out) > MAX_PEER_ADDRS:
        raise ConfigError(f"--announce: at most {MAX_PEER_ADDRS} addresses")
    return tuple(out)


__all__ = [
    "DEMO_BOOTSTRAP_KEY",
    "DEMO_BOOTSTRAP_NODE",
    "ConfigError",
    "NodeConfig",
    "add_node_flags",
    "default_data_dir",
    "resolve_node_config",
    "user_data_root",
]
