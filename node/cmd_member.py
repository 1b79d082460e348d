"""``rnet member add|list|remove``: the members of a closed swarm, kept by its bootstrap.

Run it where the bootstrap runs (same ``BOOTSTRAP_KEY``, same data dir): ``add`` signs a
membership certificate for a peer with the bootstrap's key and stores it in the bootstrap's
``members.json``; the running bootstrap picks the change up within a second and hands the
certificate to the peer when it connects (the peer then presents it in its presence).
``remove`` takes a peer out: the bootstrap stops relaying for it at once.

Light at import time (``rnet --help`` imports it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from pathlib import Path

from node.config import DEMO_BOOTSTRAP_KEY
from node.settings import default_data_dir, getenv

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("add", "list", "remove"), help="what to do")
    parser.add_argument(
        "peer", nargs="?", default=None, metavar="PEER_ID", help="the peer (add, remove)"
    )
    parser.add_argument(
        "--name", dest="member_name", default="", help="a name for the member (add)"
    )
    parser.add_argument(
        "--expires",
        default=None,
        metavar="WHEN",
        help="add: when the membership ends: a duration (90m, 12h, 30d, 2w) or a date "
        "(YYYY-MM-DD, UTC); default: never (removing it still takes effect at the bootstrap)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="the bootstrap's data dir (default: the data dir of `rnet bootstrap`)",
    )
    parser.epilog = (
        "The key comes from BOOTSTRAP_KEY (environment or .env), as for `rnet bootstrap`. "
        "Start bootstrap and providers with --members required to close the swarm."
    )


def parse_expiry(text: str, now: dt.datetime) -> int:
    """``--expires`` -> epoch ms. ValueError with a clear message if it is neither form."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if match:
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
        if seconds <= 0:
            raise ValueError("--expires must be in the future")
        return int((now.timestamp() + seconds) * 1000)
    try:
        day = dt.datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=dt.UTC)
    except ValueError:
        raise ValueError(f"--expires {text!r}: use a duration (12h, 30d) or YYYY-MM-DD") from None
    if day <= now:
        raise ValueError(f"--expires {text!r} is in the past")
    return int(day.timestamp() * 1000)


def run(args: argparse.Namespace) -> int:
    from node.keys import KeyError_, Libp2pSigner, keypair_from_seed, parse_seed
    from node.runtime.members import MemberBook, now_ms
    from protocol.errors import ProtocolError
    from protocol.identity import peer_id_from_str, peer_id_to_str
    from protocol.membership import issue

    try:
        signer = Libp2pSigner(
            keypair_from_seed(parse_seed(getenv("BOOTSTRAP_KEY", DEMO_BOOTSTRAP_KEY) or ""))
        )
    except KeyError_ as exc:
        return _fail(f"BOOTSTRAP_KEY: {exc}")
    book = MemberBook(args.data_dir or default_data_dir("bootstrap"), signer.peer_id)
    if args.action == "list":
        certs = book.certs()
        if not certs:
            print(f"no members in {book.path}")
        for cert in certs:
            expires = (
                dt.datetime.fromtimestamp(cert.expires_ms / 1000, dt.UTC).strftime(
                    "%Y-%m-%d %H:%M UTC"
                )
                if cert.expires_ms
                else "never"
            )
            state = (
                "valid"
                if cert.valid(issuer=signer.peer_id, peer=None, now_ms=now_ms())
                else "EXPIRED"
            )
            print(f"{peer_id_to_str(cert.peer)}  {cert.name or '-':<16} expires {expires}  {state}")
        return 0
    if not args.peer:
        return _fail(f"`rnet member {args.action}` needs a PEER_ID")
    try:
        peer = peer_id_from_str(args.peer)
    except ProtocolError as exc:
        return _fail(exc.message)
    if args.action == "remove":
        if not book.remove(peer):
            return _fail(f"{args.peer} is not a member")
        book.save()
        print(f"removed {args.peer}")
        return 0
    try:
        expires = parse_expiry(args.expires, dt.datetime.now(dt.UTC)) if args.expires else 0
        cert = issue(signer, peer, name=args.member_name, now_ms=now_ms(), expires_ms=expires)
    except (ValueError, ProtocolError) as exc:
        return _fail(str(getattr(exc, "message", exc)))
    book.add(cert)
    book.save()
    print(f"added {args.peer} ({args.member_name or 'no name'}) to {book.path}")
    print(cert.to_text())
    return 0


def _fail(message: str) -> int:
    print(f"rnet member: {message}", file=sys.stderr)
    return 2
