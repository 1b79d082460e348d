"""``rnet sessions`` (list a node's stored sessions) and ``rnet audit <task>`` (re-verify one).

Both read the node's SQLite store read-only; neither starts a node. Top level stays light
(``rnet --help`` imports this module): the protocol core is imported inside the run functions.
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
        help="the node's data dir (default: the data dir of --name under $RNET_DATA_DIR or "
        "~/.local/share/rnet)",
    )
    parser.add_argument(
        "--name", default=None, help="node name whose data dir to read (default: node)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _data_dir(args: argparse.Namespace) -> Path:
    if args.data_dir:
        return Path(args.data_dir).expanduser()
    from node.config import default_data_dir

    return default_data_dir(args.name or "node")


def configure_sessions(parser: argparse.ArgumentParser) -> None:
    _add_store_flags(parser)


def run_sessions(args: argparse.Namespace) -> int:
    from node.store import Store, StoreError

    try:
        with Store.in_data_dir(_data_dir(args), readonly=True) as store:
            rows = store.sessions()
    except StoreError as exc:
        print(f"rnet sessions: {exc}", file=sys.stderr)
        return 1
    if args.json:
        for s in rows:
            print(
                json.dumps(
                    {
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
                )
            )
        return 0
    if not rows:
        print("no stored sessions")
        return 0
    print(
        f"{'task':<28} {'role':<9} {'stage':<10} {'leader':<8} {'winner':<8} {'score':>5} {'msgs':>5}  when"
    )
    for s in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.created_ms / 1000))
        score = f"{s.score:.2f}" if s.score is not None else "-"
        print(
            f"{s.task[:28]:<28} {s.role:<9} {s.stage[:10]:<10} {s.leader[-6:]:<8} "
            f"{(s.winner or '-')[-6:]:<8} {score:>5} {s.envelopes:>5}  {when}"
        )
    return 0


def configure_audit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", help="the session's task id (see `rnet sessions`)")
    _add_store_flags(parser)


def run_audit(args: argparse.Namespace) -> int:
    from node.audit import audit_task
    from node.store import Store, StoreError

    try:
        with Store.in_data_dir(_data_dir(args), readonly=True) as store:
            report = audit_task(store, args.task)
    except StoreError as exc:
        print(f"rnet audit: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(report.render())
    return 0 if report.ok else 1
