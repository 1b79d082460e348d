"""``rnet sessions`` (list stored sessions) and ``rnet audit <task>`` (prove one).

Both derive what they show from the signed envelopes (``node.audit``), never from the store's
unsigned tables. ``rnet audit TASK --export FILE`` writes a self-contained bundle and
``rnet audit --bundle FILE`` verifies one without any store. Exit codes: 0 verified, 1 failed,
2 not found.

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
from typing import TYPE_CHECKING, Any

from node.store import STORE_FILENAME

if TYPE_CHECKING:
    from protocol.proof import AuditReport

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
    """Every stored session, its outcome re-derived from its signed envelopes (the unsigned
    tables are not read for it); a session whose envelopes do not verify says so."""
    from node.audit import derived_session, node_peer_id
    from node.store import Store, StoreError

    dirs = _stores(args)
    if not dirs:
        print(f"no stored sessions: no node has a store under {_searched(args)}")
        return 0
    rows = []
    for label, data_dir in dirs:
        me = node_peer_id(data_dir)
        try:
            with Store.in_data_dir(data_dir, readonly=True) as store:
                for s in store.sessions():
                    rows.append((label, s, _derived(derived_session(store, s.task), me)))
        except StoreError as exc:
            print(f"rnet sessions: {exc}", file=sys.stderr)
            return 1
    if args.json:
        for node, s, d in rows:
            record = {
                "node": node,
                "task": s.task,
                "prompt": s.prompt,
                "stage": s.stage,  # this node's last view (not signed)
                "created_ms": s.created_ms,
                "envelopes": s.envelopes,
                **d,
            }
            print(json.dumps(record))
        return 0
    if not rows:
        print("no stored sessions")
        return 0
    w = max(4, *(len(node) for node, _, _ in rows))
    print(
        f"{'node':<{w}} {'task':<24} {'role':<9} {'leader':<7} {'winner':<7} {'score':>5} "
        f"{'proof':<10} {'msgs':>4}  when"
    )
    for node, s, d in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.created_ms / 1000))
        score = f"{d['score']:.2f}" if d["score"] is not None else "-"
        print(
            f"{node:<{w}} {s.task[:24]:<24} {(d['role'] or '?'):<9} "
            f"{(d['leader'] or '?')[-6:]:<7} {(d['winner'] or '-')[-6:]:<7} {score:>5} "
            f"{d['proof']:<10} {s.envelopes:>4}  {when}"
        )
    return 0


def _derived(report: AuditReport | None, me: bytes | None) -> dict[str, Any]:
    """What ``rnet sessions`` shows of one session: values from signed data, or none."""
    from protocol.identity import peer_id_to_str

    if report is None:
        return {"proof": "unverified", "verified": False, "role": None, "leader": None,
                "winner": None, "score": None, "problems": ["no envelopes stored"]}  # fmt: skip
    role = None
    if me is not None and report.leader is not None:
        role = (
            "leader" if me == report.leader
            else "executor" if me in report.executors
            else "verifier" if me in report.verifiers
            else "observer"
        )  # fmt: skip
    proof = "aborted" if report.ok and report.aborted else "verified" if report.ok else "unverified"
    return {
        "proof": proof,
        "verified": report.ok,
        "role": role,
        "leader": peer_id_to_str(report.leader) if report.leader else None,
        "winner": peer_id_to_str(report.winner) if report.ok and report.winner else None,
        "score": report.winner_score if report.ok else None,
        "requested": report.requested,
        "joined": report.joined,
        "problems": report.problems[:3],
    }


def configure_audit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "task", nargs="?", default=None, help="the session's task id (see `rnet sessions`)"
    )
    _add_store_flags(parser)
    parser.add_argument(
        "--export",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the session's signed envelopes to FILE: a bundle anyone can check "
        "with --bundle, without a store or a network",
    )
    parser.add_argument(
        "--bundle",
        type=Path,
        default=None,
        metavar="FILE",
        help="verify a bundle written by --export instead of a store",
    )


# exit codes: verified, failed (or unreadable), not found
OK, FAILED, NOT_FOUND = 0, 1, 2


def run_audit(args: argparse.Namespace) -> int:
    """Exit 0 when every stored copy verifies, 1 when one fails, 2 when none is found."""
    if args.bundle is not None:
        return _audit_bundle(args)
    if not args.task:
        print("rnet audit: give a TASK (see `rnet sessions`) or --bundle FILE", file=sys.stderr)
        return FAILED
    from node.audit import audit_task, export_task, node_peer_id
    from node.store import Store, StoreError

    reports: list[tuple[Path, AuditReport]] = []
    for _label, data_dir in _stores(args):
        if not (data_dir / STORE_FILENAME).exists():
            continue  # no store there: nothing of the session either (exit 2 below)
        try:
            with Store.in_data_dir(data_dir, readonly=True) as store:
                report = audit_task(store, args.task, me=node_peer_id(data_dir))
                if report is None:
                    continue
                if args.export is not None and not reports:
                    bundle = export_task(store, args.task)
                    if bundle is not None:
                        args.export.write_bytes(bundle)
                        print(
                            f"rnet audit: wrote {args.export} ({len(bundle)} bytes)",
                            file=sys.stderr,
                        )
                reports.append((data_dir, report))
        except StoreError as exc:
            print(f"rnet audit: {exc}", file=sys.stderr)
            return FAILED
    if not reports:
        print(
            f"rnet audit: no store under {_searched(args)} holds session {args.task} "
            "(`rnet sessions` lists the stored ones)",
            file=sys.stderr,
        )
        return NOT_FOUND
    for data_dir, report in reports:
        if args.json:
            print(json.dumps({"data_dir": str(data_dir), **report.to_dict()}))
        else:
            if len(reports) > 1:
                print(f"== {data_dir}")
            print(report.render())
    return OK if all(r.ok for _, r in reports) else FAILED


def _audit_bundle(args: argparse.Namespace) -> int:
    from protocol.errors import ProtocolError
    from protocol.proof import read_bundle
    from protocol.transcript import verify_transcript

    try:
        data = args.bundle.read_bytes()
    except FileNotFoundError:
        print(f"rnet audit: no bundle at {args.bundle}", file=sys.stderr)
        return NOT_FOUND
    except OSError as exc:
        print(f"rnet audit: cannot read {args.bundle}: {exc}", file=sys.stderr)
        return FAILED
    try:
        task, raws = read_bundle(data)
    except ProtocolError as exc:
        print(f"rnet audit: {args.bundle}: {exc}", file=sys.stderr)
        return FAILED
    if args.task and args.task != task:
        print(f"rnet audit: the bundle holds session {task}, not {args.task}", file=sys.stderr)
        return NOT_FOUND
    report = verify_transcript(raws, task)
    if args.json:
        print(json.dumps({"bundle": str(args.bundle), **report.to_dict()}))
    else:
        print(report.render())
    return OK if report.ok else FAILED
