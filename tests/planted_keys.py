"""Keys planted in node data dirs before the nodes start, so tests know the order of peer ids.

Providers dial the peers whose ids follow theirs: a test that must know who dials whom gives its
nodes keys whose ids sort in the order it needs.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path

from nacl.signing import SigningKey

from protocol.identity import peer_id_from_public_key, peer_id_to_str


def peer_id_of_seed(seed: bytes) -> str:
    return peer_id_to_str(peer_id_from_public_key(bytes(SigningKey(seed).verify_key)))


def plant_keys(data_root: Path, names: Sequence[str]) -> dict[str, str]:
    """Give the nodes ``names`` (data dirs under ``data_root``) fresh keys whose peer ids sort in
    that order; returns name -> peer id."""
    seeds = sorted((secrets.token_bytes(32) for _ in names), key=peer_id_of_seed)
    ids = {}
    for name, seed in zip(names, seeds, strict=True):
        data_dir = data_root / name
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "node.key").write_text(seed.hex() + "\n", encoding="ascii")
        ids[name] = peer_id_of_seed(seed)
    return ids
