"""A rogue peer that announces addresses chosen to make others dial where it likes.

Run as ``python -m tests.e2e.rogue_addrs --bootstrap MADDR --name N --addrs JSON``. A real
provider node (own key, real libp2p host) whose presence, correctly signed by itself, carries
the ``--addrs`` list instead of its own addresses. It prints ``{"rogue": "presence", ...}`` each
time it announces (again on a line ``again`` on stdin) and runs until stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys


def say(what: str, **fields: object) -> None:
    print(json.dumps({"rogue": what, **fields}), flush=True)


async def main(args: argparse.Namespace) -> int:
    from node.config import resolve_node_config
    from node.runtime import NodeRuntime, setup_logging
    from protocol.messages import MESH_TOPIC, Presence

    setup_logging("warning", stream=sys.stderr)
    runtime = NodeRuntime(resolve_node_config(args, "provider"))
    crafted = tuple(json.loads(args.addrs))

    async def publish_crafted() -> None:
        body = Presence(name="rogue", role="provider", model="sim", backend="sim", addrs=crafted)
        await runtime.publish_envelope(MESH_TOPIC, body)
        say("presence", addrs=list(crafted))

    # the provider role announces this node on every (re)connection: announce the lie instead
    runtime.publish_presence = publish_crafted  # type: ignore[method-assign]
    await runtime.start()
    try:
        # "again" on stdin: announce the lie once more; EOF: stop
        while line := await asyncio.to_thread(sys.stdin.readline):
            if line.strip() == "again":
                await runtime.call(publish_crafted)
        return 0
    finally:
        await runtime.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    from node.config import add_node_flags

    add_node_flags(parser)
    parser.add_argument("--addrs", required=True, help="JSON list of address strings")
    sys.exit(asyncio.run(main(parser.parse_args())))
