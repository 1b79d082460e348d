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

logger = logging.getLogger(__name__)


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


def _stores(args: argparse.Namespace) -> list[Path]:
    """The data dirs to read: the one asked for, else every node dir that has a store."""
    from node.config import default_data_dir, user_data_root
    from node.store import STORE_FILENAME

    if args.data_dir:
        return [Path(args.data_dir).expanduser()]
    if args.name:
        return [default_data_dir(args.name)]
    root = user_data_root()
    return sorted(p.parent for p in root.glob(f"*/{STORE_FILENAME}"))


def configure_sessions(parser: argparse.ArgumentParser) -> None:
    _add_store_flags(parser)


def run_sessions(args: argparse.Namespace) -> int:
    from node.store import Store, StoreError

    dirs = _stores(args)
    if not dirs:
        print("no stored sessions (no node has a store under the data root)")
        return 0
    rows = []
    for data_dir in dirs:
        try:
            with Store.in_data_dir(data_dir, readonly=True) as store:
                rows += [(data_dir.name, s) for s in store.sessions()]
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
    print(
        f"{'node':<12} {'task':<24} {'role':<9} {'stage':<9} {'leader':<7} {'winner':<7} "
        f"{'score':>5} {'msgs':>4}  when"
    )
    for node, s in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.created_ms / 1000))
        score = f"{s.score:.2f}" if s.score is not None else "-"
        print(
            f"{node[:12]:<12} {s.task[:24]:<24} {s.role:<9} {s.stage[:9]:<9} {s.leader[-6:]:<7} "
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
    for data_dir in _stores(args):
        try:
            with Store.in_data_dir(data_dir, readonly=True) as store:
                if store.session(args.task) is None and not store.envelopes(args.task):
                    if args.data_dir or args.name:
                        reports.append((data_dir, audit_task(store, args.task)))
                    continue
                reports.append((data_dir, audit_task(store, args.task)))
        except StoreError as exc:
            print(f"rnet audit: {exc}", file=sys.stderr)
            return 1
    if not reports:
        print(f"rnet audit: no store holds session {args.task}", file=sys.stderr)
        return 1
    for data_dir, report in reports:
        if args.json:
            print(json.dumps({"data_dir": str(data_dir), **report.to_dict()}))
        else:
            if len(reports) > 1:
                print(f"== {data_dir}")
            print(report.render())
    return 0 if all(r.ok for _, r in reports) else 1
