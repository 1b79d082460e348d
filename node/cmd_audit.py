"""``rnet sessions`` (list stored sessions) and ``rnet audit <task>`` (re-verify one).

Both read SQLite stores read-only and start no node. Without ``--data-dir``/``--name`` they look
at every node's store under the data root (``$RNET_DATA_DIR`` or ``~/.local/share/rnet``): a
session is usually in several stores (the leader's and each participant's), and each copy is
audited on its own. Top level stays light (``rnet --help`` imports this module).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from node.store import STORE_FILENAME

logger = logging.getLogger(__name__)

# Where node dirs sit under a data root: <root>/<name> and <root>/up/<name> (`rnet up`).
STORE_DEPTHS = ("*/", "*/*/")


def _add_store_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="one node's data dir (default: every node under $RNET_DATA_DIR or "
        "$XDG_DATA_HOME/rnet or ~/.local/share/rnet)",
    )
    parser.add_argument("--name", default=None, help="one node, by name, under the data root")
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of text")


def _stores(args: argparse.Namespace) -> list[tuple[str, Path]]:
    """The stores to read, each as (label, data dir): the one asked for, else every node's.

    A data root holds one directory per node (``<root>/<name>``); ``rnet up`` and ``make demo``
    keep theirs one level deeper (``<root>/up/leader``, ``<root>/up/provider-1``...), so both
    depths are searched. ``--data-dir`` may name one node's dir or such a root.
    """
    from node.config import default_data_dir, user_data_root

    if args.name:
        path = default_data_dir(args.name)
        return [(args.name, path)]
    if args.data_dir:
        path = Path(args.data_dir).expanduser()
        if (path / STORE_FILENAME).exists():
            return [(path.name, path)]
        return _stores_under(path) or [(path.name, path)]
    return _stores_under(user_data_root())


def _searched(args: argparse.Namespace) -> Path:
    """The directory searched when no store was found (for the message)."""
    from node.config import user_data_root

    return Path(args.data_dir).expanduser() if args.data_dir else user_data_root()


def _stores_under(root: Path) -> list[tuple[str, Path]]:
    found = sorted({p.parent for d in STORE_DEPTHS for p in root.glob(d + STORE_FILENAME)})
    return [(p.relative_to(root).as_posix(), p) for p in found]


def configure_sessions(parser: argparse.ArgumentParser) -> None:
    _add_store_flags(parser)


def run_sessions(args: argparse.Namespace) -> int:
    from node.store import Store, StoreError

    dirs = _stores(args)
    if not dirs:
        print(f"no stored sessions: no node has a store under {_searched(args)}")
        return 0
    rows = []
    for label, data_dir in dirs:
        try:
            with Store.in_data_dir(data_dir, readonly=True) as store:
                rows += [(label, s) for s in store.sessions()]
        except StoreError as exc:
            print(f"rnet sessions: {exc}", file=sys.stderr)
            return 1
    if args.json:
        for node, s in rows:
            record = {
                "node": node,
                "task": s.task,
                "leader": s.leader,
                "role": s.role,
                "stage": s.stage,
                "prompt": s.prompt,
                "created_ms": s.created_ms,
                "winner": s.winner,
                "score": s.score,
                "has_result": s.has_result,
                "envelopes": s.envelopes,
            }
            print(json.dumps(record))
        return 0
    if not rows:
        print("no stored sessions")
        return 0
    w = max(4, *(len(node) for node, _ in rows))
    print(
        f"{'node':<{w}} {'task':<24} {'role':<9} {'stage':<9} {'leader':<7} {'winner':<7} "
        f"{'score':>5} {'msgs':>4}  when"
    )
    for node, s in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.created_ms / 1000))
        score = f"{s.score:.2f}" if s.score is not None else "-"
        print(
            f"{node:<{w}} {s.task[:24]:<24} {s.role:<9} {s.stage[:9]:<9} {s.leader[-6:]:<7} "
            f"{(s.winner or '-')[-6:]:<7} {score:>5} {s.envelopes:>4}  {when}"
        )
    return 0


def configure_audit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", help="the session's task id (see `rnet sessions`)")
    _add_store_flags(parser)


def run_audit(args: argparse.Namespace) -> int:
    from node.audit import audit_task
    from node.store import Store, StoreError

    reports = []
    stores = _stores(args)
    for _label, data_dir in stores:
        try:
            with Store.in_data_dir(data_dir, readonly=True) as store:
                if store.session(args.task) is None and not store.envelopes(args.task):
                    if len(stores) == 1:  # one store asked for: its report says what is missing
                        reports.append((data_dir, audit_task(store, args.task)))
                    continue
                reports.append((data_dir, audit_task(store, args.task)))
        except StoreError as exc:
            print(f"rnet audit: {exc}", file=sys.stderr)
            return 1
    if not reports:
        print(
            f"rnet audit: no store under {_searched(args)} holds session {args.task} "
            "(`rnet sessions` lists the stored ones)",
            file=sys.stderr,
        )
        return 1
    for data_dir, report in reports:
        if args.json:
            print(json.dumps({"data_dir": str(data_dir), **report.to_dict()}))
        else:
            if len(reports) > 1:
                print(f"== {data_dir}")
            print(report.render())
    return 0 if all(r.ok for _, r in reports) else 1
