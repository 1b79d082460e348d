"""``rnet peers [PEER]``: the reputation of every peer a node has judged with, from its store.

Reads the ``reputation`` table of each node's store read-only (``node.reputation``; the node
fills it from the signed transcripts it verified) and starts no node. With a peer ID (or the
end of one), that peer's history: what it did in each counted session and what it earned.
Top level stays light (``rnet --help`` imports this module).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

# one rule for where stores are, shared with `rnet sessions` / `rnet audit`
from node.cmd_audit import _add_store_flags as add_store_flags
from node.cmd_audit import _stores as find_stores

if TYPE_CHECKING:
    from node.reputation import PeerStanding

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "peer",
        nargs="?",
        default=None,
        help="one peer (its base58 ID, or the end of it): its standing and history",
    )
    # the same stores as `rnet sessions` (one node's dir, a root, or every node's)
    add_store_flags(parser)
    parser.epilog = (
        "reputation: all evidence, 0..1 (new identities start at 0.10); judge: how its scores "
        "agreed with the other judges and how it scored canaries (its weight in the robust "
        "tally and for a judging seat); answers: how its answers scored. See README, Trust."
    )


def run(args: argparse.Namespace) -> int:
    from node.reputation import Book
    from node.store import Store, StoreError

    found = 0
    for label, data_dir in find_stores(args):
        try:
            with Store.in_data_dir(data_dir, readonly=True) as store:
                standings = Book(store, None).standings()
        except StoreError as exc:
            print(f"rnet peers: {exc}", file=sys.stderr)
            return 1
        if args.peer:
            standings = [s for s in standings if s.peer.endswith(args.peer)]
        found += len(standings)
        _print(label, standings, args)
    if args.peer and not found:
        print(f"rnet peers: no store knows a peer ending in {args.peer!r}", file=sys.stderr)
        return 1
    if not found and not args.json:
        print("no reputation yet (no node has counted a finished session)")
    return 0


def _print(node: str, standings: list[PeerStanding], args: argparse.Namespace) -> None:
    from node.reputation import render

    if args.json:
        for s in standings:
            print(json.dumps({"node": node, **s.to_dict(history=bool(args.peer))}))
    elif standings:
        print(f"== {node}")
        print("\n".join(render(standings, history=bool(args.peer))))
