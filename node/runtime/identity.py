"""A node's identity on disk: the data-dir lock and the key seed."""

from __future__ import annotations

import itertools
from dataclasses import replace

from node.config import NodeConfig
from node.errors import RuntimeError_
from node.keys import DataDirLock, KeyError_, load_or_create_seed, parse_seed


def claim_identity(config: NodeConfig) -> tuple[NodeConfig, DataDirLock, bytes]:
    """Lock the data dir (picking node-2, node-3... when no name was given) and load the key.

    Returns the config (its name and data dir settled), the held lock and the key seed.
    """
    cfg = config
    data_dir = cfg.data_dir
    lock = DataDirLock(data_dir)
    if not lock.try_acquire():
        if cfg.data_dir_explicit:
            raise RuntimeError_(
                f"another node is running with data dir {data_dir}: give this one its own "
                "--data-dir (each node needs its own key and store), or stop the other"
            )
        if cfg.name_explicit:
            raise RuntimeError_(
                f"another node is running with data dir {data_dir}: pick another --name "
                "(it chooses the directory under the data root), or stop the other"
            )
        # No name given: take the first free default name (node, node-2, node-3...).
        for i in itertools.count(2):
            name = f"{cfg.name}-{i}"
            data_dir = cfg.data_dir.parent / name
            lock = DataDirLock(data_dir)
            if lock.try_acquire():
                cfg = replace(cfg, name=name, data_dir=data_dir)
                break
            if i > 999:
                raise RuntimeError_("no free data dir")
    try:
        if cfg.role == "bootstrap" and cfg.bootstrap_key:
            seed = parse_seed(cfg.bootstrap_key)
        else:
            seed = load_or_create_seed(data_dir)
    except (KeyError_, OSError) as exc:
        lock.release()
        raise RuntimeError_(f"node key: {exc}") from exc
    return cfg, lock, seed
