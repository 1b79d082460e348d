"""Where a node's CPU time goes: cProfile output grouped by what the code is.

``python -m bench.session --spy`` samples running nodes with py-spy (no slowdown) and
:func:`spy_report` says which of our functions and which libp2p layers are on the stack.
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


# ------------------------------------------------------------------------------------------------
# py-spy: sampled wall-clock stacks of running nodes (no slowdown, real deployment timing)
# ------------------------------------------------------------------------------------------------

# (label, substring of a frame): a sample counts for every label whose frame is on its stack.
SPY_FUNCTIONS: list[tuple[str, str]] = [
    ("ours: JSON event lines (EventPrinter)", "EventPrinter.__call__"),
    ("ours: session snapshots -> events", "SessionEngine._emit_snapshot"),
    ("ours: SQLite store writes", "(node/store.py"),
    ("ours: inbound envelopes (_on_pubsub_message)", "NodeRuntime._on_pubsub_message"),
    ("  of which open_envelope (decode + verify)", "open_envelope"),
    ("ours: seal + publish (publish_envelope)", "NodeRuntime.publish_envelope"),
    ("ours: bootstrap relay + bootmesh (on_topology)", "BootstrapRole.on_topology"),
    ("ours: heartbeat pings", "NodeRuntime._heartbeat_loop"),
    ("libp2p pubsub: receive (push_msg)", "Pubsub.push_msg"),
    ("libp2p pubsub: message signatures", "signature"),
    ("libp2p floodsub fan-out (FloodSub.publish)", "FloodSub.publish"),
    ("libp2p noise/yamux: writes", "SecureSession.write"),
    ("libp2p noise/yamux: reads", "SecureSession.read"),
]
# Leaf frames that mean "waiting", not working.
SPY_IDLE = (
    "select (selectors",
    "EpollSelector",
    "Condition.wait",
    "_read_stdin",
    "_work (trio/_core/_thread_cache",
    "get_events",
    "_worker (concurrent",
)


def start_spies(exe: str, directory: Path, n: int, nodes: Sequence[object]) -> list[object]:
    """``py-spy record`` (raw stacks, 100 Hz, non-blocking) on each node; stop with stop_spies."""
    import subprocess

    directory.mkdir(parents=True, exist_ok=True)
    spies = []
    for node in nodes:
        out = directory / f"N{n}_{node.name}.txt"  # type: ignore[attr-defined]
        spies.append(
            subprocess.Popen(
                [
                    exe,
                    "record",
                    "-r",
                    "100",
                    "-f",
                    "raw",
                    "--nonblocking",
                    "-o",
                    str(out),
                    "-p",
                    str(node.pid),
                ],  # type: ignore[attr-defined]
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    return spies


def stop_spies(spies: Sequence[object]) -> None:
    import signal
    import subprocess

    for spy in spies:
        spy.send_signal(signal.SIGINT)  # type: ignore[attr-defined]
    for spy in spies:
        try:
            spy.wait(timeout=20)  # type: ignore[attr-defined]
        except subprocess.TimeoutExpired:
            spy.kill()  # type: ignore[attr-defined]


def spy_summary(path: Path) -> dict[str, object]:
    total = idle = 0
    counts = dict.fromkeys((label for label, _ in SPY_FUNCTIONS), 0)
    for line in path.read_text(errors="replace").splitlines():
        stack, _, num = line.rpartition(" ")
        try:
            n = int(num)
        except ValueError:
            continue
        frames = stack.split(";")
        total += n
        if any(x in frames[-1] for x in SPY_IDLE):
            idle += n
            continue
        for label, needle in SPY_FUNCTIONS:
            if any(needle in f for f in frames):
                counts[label] += n
    return {"samples": total, "idle": idle, "busy": total - idle, "functions": counts}


def spy_report(directory: Path) -> str:
    parts = [
        "py-spy, share of each node's non-idle samples (wall clock: includes time runnable but "
        "waiting for a CPU, so it shows proportions, not CPU seconds):"
    ]
    for path in sorted(Path(directory).glob("*.txt")):
        s = spy_summary(path)
        busy = s["busy"] or 1
        parts.append(f"{path.stem}: {s['busy']} busy of {s['samples']} samples")
        rows = [
            [label, f"{count / busy * 100:.1f}%"]
            for label, count in s["functions"].items()  # type: ignore[union-attr]
            if count
        ]
        parts.append(table(["on the stack", "share"], rows))
        parts.append("")
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("directory", type=Path, help="*.prof (cProfile) and/or *.txt (py-spy raw)")
    args = parser.parse_args(argv)
    if any(Path(args.directory).glob("*.prof")):
        print(report(args.directory))
    if any(Path(args.directory).glob("*.txt")):
        print(spy_report(args.directory))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
