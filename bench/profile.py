"""Where a node's CPU time goes: cProfile output grouped by what the code is.

``python -m bench.session --profile`` writes ``<name>.prof`` for the bootstrap, the leader and
one provider; :func:`report` sums each function's own time (``tottime``) into categories by the
file it lives in (crypto, msgpack, SQLite, JSON events, libp2p layers, trio, asyncio, ours...)
and lists the top functions by cumulative time in our own code.

Alone: ``python -m bench.profile bench/results/profile``.
"""

from __future__ import annotations

import argparse
import logging
import pstats
from collections.abc import Sequence
from pathlib import Path

from bench.common import table

logger = logging.getLogger(__name__)

# (category, substrings of the file path or function name); the first match wins.
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    (
        "start-up (imports, class bodies)",
        (
            "<frozen importlib",
            "marshal.loads",
            "builtins.compile",
            "__build_class__",
            "_imp.",
            "builtins.exec",
            "sre_compile",
            "re/_compiler",
            "re/_parser",
        ),
    ),
    ("socket send/recv syscalls", ("of '_socket.socket' objects",)),
    ("stdout writes (event lines)", ("of '_io.TextIOWrapper' objects",)),
    (
        "crypto (ed25519, noise, hashes)",
        (
            "nacl",
            "/crypto/",
            "cryptography",
            "coincurve",
            "_hashlib",
            "hashlib",
            "/noise/",
            "x25519",
            "chacha",
            "protocol/identity",
            "node/keys",
        ),
    ),
    ("msgpack / protobuf", ("msgpack", "protobuf", "_pb2", "google/")),
    ("SQLite store", ("sqlite3", "node/store")),
    (
        "JSON events / stdout",
        ("json/", "_json", "node/events", "node/headless", "TextIOWrapper", "'write'", "'flush'"),
    ),
    ("our protocol (sans-IO)", ("/protocol/",)),
    ("our node (sessions, runtime, bridge)", ("/node/",)),
    ("libp2p pubsub", ("libp2p/pubsub",)),
    (
        "libp2p yamux/streams",
        ("libp2p/stream_muxer", "libp2p/network", "libp2p/io", "libp2p/transport"),
    ),
    ("libp2p other", ("libp2p",)),
    ("multiaddr / base58", ("multiaddr", "base58", "multihash", "varint")),
    ("trio", ("trio/", "trio\\", "outcome", "sniffio")),
    ("asyncio", ("asyncio/", "selectors", "'select'", "epoll", "'poll'")),
    ("logging", ("logging/",)),
    ("sim model", ("node/slm",)),
]


IDLE = "idle (waiting in epoll/select)"


def categorize(filename: str, funcname: str) -> str:
    key = f"{filename}:'{funcname}'"
    if "select.epoll" in funcname or "select.select" in funcname:
        return IDLE
    for name, needles in CATEGORIES:
        if any(n in key for n in needles):
            return name
    if filename == "~":
        return "builtins (other)"
    return "other"


def profile_summary(path: Path, top: int = 8) -> dict[str, object]:
    stats = pstats.Stats(str(path))
    raw = stats.stats  # type: ignore[attr-defined]
    total = 0.0
    by_cat: dict[str, float] = {}
    ours: list[tuple[float, str]] = []
    for (filename, _line, funcname), (_cc, _nc, tt, ct, _callers) in raw.items():
        total += tt
        cat = categorize(filename, funcname)
        by_cat[cat] = by_cat.get(cat, 0.0) + tt
        if "/protocol/" in filename or "/node/" in filename:
            short = filename.split("/main/")[-1] if "/main/" in filename else filename
            ours.append((ct, f"{short}:{funcname}"))
    ours.sort(reverse=True)
    idle = by_cat.pop(IDLE, 0.0)
    return {
        "total_s": total,
        "idle_s": idle,
        "categories": sorted(by_cat.items(), key=lambda kv: -kv[1]),
        "ours_top_cumulative": ours[:top],
    }


def report(directory: Path) -> str:
    parts = []
    for path in sorted(Path(directory).glob("*.prof")):
        s = profile_summary(path)
        busy = s["total_s"] - s["idle_s"]  # type: ignore[operator]
        rows = []
        for cat, secs in s["categories"]:  # type: ignore[union-attr]
            rows.append([cat, f"{secs:.2f}", f"{secs / busy * 100 if busy else 0:.0f}%"])
        parts.append(
            f"{path.stem}: {s['total_s']:.1f} s profiled, of which {s['idle_s']:.1f} s idle in "
            f"epoll/select; categories by own time (share of the {busy:.1f} s busy):"
        )
        parts.append(table(["category", "s", "share"], rows))
        parts.append("  our code, top by cumulative time:")
        for ct, name in s["ours_top_cumulative"]:  # type: ignore[union-attr]
            parts.append(f"    {ct:7.2f} s  {name}")
        parts.append("")
    return "\n".join(parts) if parts else f"no .prof files in {directory}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    print(report(args.directory))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
