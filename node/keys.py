"""Node identity: Ed25519 keys (libp2p's own), their persistence, and ``rnet keygen``.

A key is stored as its 32-byte seed in hex (the same format as ``BOOTSTRAP_KEY``). Providers keep
theirs in ``<data dir>/node.key`` so a restarted node is the same peer. The data dir is claimed
with an exclusive lock so two processes never run as the same peer by accident.

libp2p is imported inside functions: ``rnet --help`` imports this module.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from libp2p.crypto.keys import KeyPair

logger = logging.getLogger(__name__)

KEY_FILE = "node.key"
LOCK_FILE = "node.lock"


class KeyError_(ValueError):
    """A key (seed) that cannot be used: wrong length, not hex, unreadable file."""


def parse_seed(text: str) -> bytes:
    """Hex 32-byte seed -> bytes, with a clear error."""
    text = text.strip()
    try:
        seed = bytes.fromhex(text)
    except ValueError as exc:
        raise KeyError_("key must be 64 hex characters (a 32-byte Ed25519 seed)") from exc
    if len(seed) != 32:
        raise KeyError_(f"key must be 32 bytes (64 hex characters), got {len(seed)} bytes")
    return seed


def keypair_from_seed(seed: bytes) -> KeyPair:
    from libp2p.crypto.ed25519 import create_new_key_pair

    return create_new_key_pair(seed)


def peer_id_of(keypair: KeyPair) -> Any:
    """The libp2p ``ID`` of a key pair."""
    from libp2p.peer.id import ID

    return ID.from_pubkey(keypair.public_key)


class Libp2pSigner:
    """``protocol.identity.Signer`` backed by a libp2p key pair (the node's own key)."""

    def __init__(self, keypair: KeyPair) -> None:
        self._private = keypair.private_key
        self.peer_id: bytes = peer_id_of(keypair).to_bytes()

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)


def load_or_create_seed(data_dir: Path) -> bytes:
    """The seed in ``<data_dir>/node.key``; made (0600) on first use."""
    path = data_dir / KEY_FILE
    try:
        return parse_seed(path.read_text(encoding="ascii"))
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyError_(f"cannot read {path}: {exc}") from exc
    except KeyError_ as exc:
        raise KeyError_(f"{path}: {exc}") from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    seed = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(seed.hex() + "\n")
    logger.info("new node key written to %s", path)
    return seed


class DataDirLock:
    """An exclusive ``flock`` on ``<data_dir>/node.lock`` held for the life of the process."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._fh: IO[str] | None = None

    def try_acquire(self) -> bool:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fh = open(self.data_dir / LOCK_FILE, "a+", encoding="ascii")  # noqa: SIM115 (held open)
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh
        return True

    def release(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def bootstrap_pair(seed: bytes, host: str = "127.0.0.1", port: int = 8888) -> tuple[str, str]:
    """(BOOTSTRAP_KEY, BOOTSTRAP_NODE) for a seed."""
    peer_id = peer_id_of(keypair_from_seed(seed)).to_base58()
    return seed.hex(), f"/ip4/{host}/tcp/{port}/p2p/{peer_id}"


# -- `rnet keygen` ---------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address put in BOOTSTRAP_NODE (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=8888, help="port put in BOOTSTRAP_NODE (default: 8888)"
    )
    parser.add_argument(
        "--seed", default=None, help="derive from this hex seed instead of a random one"
    )


def run(args: argparse.Namespace) -> int:
    try:
        seed = parse_seed(args.seed) if args.seed else secrets.token_bytes(32)
    except KeyError_ as exc:
        print(f"rnet keygen: {exc}", file=sys.stderr)
        return 2
    if not 0 < args.port < 65536:
        print("rnet keygen: --port must be 1..65535", file=sys.stderr)
        return 2
    key, node = bootstrap_pair(seed, args.host, args.port)
    print(f"BOOTSTRAP_KEY={key}")
    print(f"BOOTSTRAP_NODE={node}")
    return 0
