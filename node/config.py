"""Node configuration: the shared node flags, ``.env`` loading, the data directory.

Precedence is flag > environment (the process environment first, then ``.env`` in the current
directory) > default. Flags default to ``None`` so ``resolve_node_config`` can tell "not given"
from "given the default". Nothing here touches the disk at import time.
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

MESH_TOPIC = "swarm/mesh"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_BOOTSTRAP_PORT = 8888

# The demo pair shipped in .env.example (a test proves these three agree). Public, so only for a
# local demo swarm: a real deployment makes its own with `rnet keygen`.
DEMO_BOOTSTRAP_KEY = "ca5b2ca0ebc977128c80354266146b8561423fcc67bd383c89e693d7bbc63697"
DEMO_BOOTSTRAP_NODE = (
    "/ip4/127.0.0.1/tcp/8888/p2p/12D3KooWPvoF9HfWisUgV2P7A5fq7wW2CAAqzZE45sVbKdxGRv5s"
)

LOG_LEVELS = ("debug", "info", "warning", "error")


def read_dotenv(path: Path | None = None) -> dict[str, str]:
    """Parse a ``.env`` file (KEY=VALUE lines, ``#`` comments, optional quotes). Missing -> {}."""
    path = path if path is not None else Path.cwd() / ".env"
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return {}
    values: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.replace("_", "").isalnum():
            logger.warning("%s:%d: ignoring malformed line", path, lineno)
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def getenv(
    name: str, default: str | None = None, *, dotenv: dict[str, str] | None = None
) -> str | None:
    """Environment variable, else the ``.env`` value, else ``default``. Empty counts as unset."""
    value = os.environ.get(name)
    if value:
        return value
    env_file = dotenv if dotenv is not None else read_dotenv()
    value = env_file.get(name)
    return value if value else default


def user_data_root(dotenv: dict[str, str] | None = None) -> Path:
    """``$RNET_DATA_DIR``, else ``$XDG_DATA_HOME/rnet``, else ``~/.local/share/rnet``."""
    explicit = getenv("RNET_DATA_DIR", dotenv=dotenv)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "rnet"


def default_data_dir(name: str, dotenv: dict[str, str] | None = None) -> Path:
    """One subdirectory per node name under the user's data root."""
    return user_data_root(dotenv) / name


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
        help=f"TCP port to listen on (default: {DEFAULT_BOOTSTRAP_PORT} for the bootstrap, "
        "a free port otherwise)",
    )
    g.add_argument(
        "--router",
        choices=("floodsub", "gossipsub"),
        default=None,
        help="pubsub router (default: floodsub; $RNET_ROUTER)",
    )
    g.add_argument(
        "--max-dials",
        type=int,
        default=None,
        help=argparse.SUPPRESS
        if bootstrap
        else "at most this many providers learned from the bootstrap are dialed directly "
        "(default: 2; $RNET_MAX_DIALS; 0 = star only). While the bootstrap is reachable all "
        "traffic goes through it; the direct links carry the messages when it is not",
    )
    g.add_argument(
        "--hung-after",
        type=float,
        default=None,
        metavar="S",
        help="drop a connected peer that has not answered pings for S seconds (default: 15; "
        "$RNET_HUNG_AFTER)",
    )
    g.add_argument("--json", action="store_true", help="headless: one JSON object per event line")
    g.add_argument("--no-ui", action="store_true", help="run headless (no console)")
    g.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=None,
        help="log verbosity (default: info; $RNET_LOG_LEVEL)",
    )
    try:
        from node.slm.config import add_backend_flags
    except ImportError:
        pass  # the SLM backends are optional until node/slm lands
    else:
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
    hung_after: float = 15.0
    name_explicit: bool = True


class ConfigError(ValueError):
    """Bad configuration value (flag, environment or .env)."""


def resolve_node_config(args: argparse.Namespace, role: str) -> NodeConfig:
    """Apply flag > environment > default to the parsed node flags."""
    dotenv = read_dotenv()
    name = getattr(args, "name", None)
    name_explicit = bool(name)
    if not name:
        name = "bootstrap" if role == "bootstrap" else "node"
    if "/" in name or name in (".", ".."):
        raise ConfigError(f"--name must be a plain name, not a path: {name!r}")
    data_dir = getattr(args, "data_dir", None)
    data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir(name, dotenv)
    host = getattr(args, "host", None) or getenv("RNET_HOST", DEFAULT_HOST, dotenv=dotenv)
    port = getattr(args, "port", None)
    if port is None:
        env_port = getenv("RNET_PORT", dotenv=dotenv) if role != "bootstrap" else None
        port = int(env_port) if env_port else (DEFAULT_BOOTSTRAP_PORT if role == "bootstrap" else 0)
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port out of range: {port}")
    bootstrap = getattr(args, "bootstrap", None) or getenv(
        "BOOTSTRAP_NODE", DEMO_BOOTSTRAP_NODE, dotenv=dotenv
    )
    bootstrap_key = getenv("BOOTSTRAP_KEY", DEMO_BOOTSTRAP_KEY, dotenv=dotenv)
    router = getattr(args, "router", None) or getenv("RNET_ROUTER", "floodsub", dotenv=dotenv)
    if router not in ("floodsub", "gossipsub"):
        raise ConfigError(f"unknown pubsub router {router!r} (floodsub or gossipsub)")
    max_dials = getattr(args, "max_dials", None)
    if max_dials is None:
        raw = getenv("RNET_MAX_DIALS", "2", dotenv=dotenv)
        try:
            max_dials = int(raw)
        except ValueError:
            raise ConfigError(f"RNET_MAX_DIALS must be a whole number, not {raw!r}") from None
    if max_dials < 0:
        raise ConfigError("--max-dials must be >= 0")
    hung_after = getattr(args, "hung_after", None)
    if hung_after is None:
        try:
            hung_after = float(getenv("RNET_HUNG_AFTER", "15", dotenv=dotenv))
        except ValueError:
            raise ConfigError("RNET_HUNG_AFTER must be a number of seconds") from None
    if not 1.0 <= hung_after <= 3600.0:
        raise ConfigError("--hung-after must be between 1 and 3600 seconds")
    log_level = getattr(args, "log_level", None) or getenv("RNET_LOG_LEVEL", "info", dotenv=dotenv)
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
    )
