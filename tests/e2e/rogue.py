"""A rogue peer for the forgery tests: a real node (own key, real libp2p host) that breaks the rules.

Run as ``python -m tests.e2e.rogue --bootstrap MADDR --data-dir D``. It runs no sessions engine:
it watches ``swarm/mesh`` for an advertisement, subscribes the task topic without joining, and
once the leader's ``assign`` arrives it publishes, each correctly signed by itself:

1. a ``score`` for label A (it is no verifier)                          -> ``not_verifier``
2. an ``item`` on the judge topic with a text of its own (not the leader) -> ``not_leader``
3. a ``result`` naming an executor the winner (it is not the leader)    -> ``not_leader``

and, after the real result, one more ``score`` (late). Every step is printed as one JSON line
(``{"rogue": <what>, ...}``) so the test can follow; it exits after the late score.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

logger = logging.getLogger(__name__)


def say(what: str, **fields: object) -> None:
    print(json.dumps({"rogue": what, **fields}), flush=True)


async def main(args: argparse.Namespace) -> int:

    from node.config import resolve_node_config
    from node.runtime import NodeRuntime, setup_logging
    from protocol.envelope import judge_topic
    from protocol.identity import peer_id_to_str
    from protocol.messages import Assign, Item, Result, Score

    setup_logging("warning", stream=sys.stderr)
    config = resolve_node_config(args, "provider")
    runtime = NodeRuntime(config)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    state: dict[str, object] = {}

    async def on_task(env: object) -> None:
        task = env.task
        if isinstance(env.body, Assign) and env.sender == state.get("leader"):
            executors = env.body.executors
            victim = executors[0]
            await runtime.publish_envelope(task, Score("A", 0.01, "forged", "rogue"), task)
            say("score_not_verifier", executor=peer_id_to_str(victim))
            item = Item("A", "FORGED ITEM", bytes(32), 1)
            await runtime.publish_envelope(judge_topic(task), item, task)
            say("item_forged")
            verifiers = env.body.verifiers
            forged = Result(
                winner=victim,
                score=0.99,
                text="FORGED RESULT",
                aggregator="mean",
                averages={e: 0.99 for e in executors},
                counts={e: len(verifiers) for e in executors},
                scores={e: {v: 0.99 for v in verifiers} for e in executors},
                missing=(),
            )
            await runtime.publish_envelope(task, forged, task)
            say("result_forged", winner=peer_id_to_str(victim))
        elif isinstance(env.body, Result) and env.sender == state.get("leader"):
            victim = env.body.executors[0]
            await runtime.publish_envelope(task, Score("A", 0.02, "late", "rogue"), task)
            say("score_late", executor=peer_id_to_str(victim))
            loop.call_soon(done.set)

    async def on_advertise(env: object) -> None:
        if "task" in state:
            return
        state["task"], state["leader"] = env.task, env.sender
        await runtime.join_topic(env.task, on_task)
        # No wait for a route: while connected to the hub everything goes to it, and it relays
        # the task topic since the leader's subscription reached it (before the advertisement).
        say("watching", task=env.task)

    runtime.add_mesh_handler("advertise", on_advertise)
    await runtime.start()
    ready = asyncio.Event()
    runtime.subscribe(lambda e: ready.set() if e.event == "ready" else None)
    try:
        if not runtime.ready:
            await asyncio.wait_for(ready.wait(), 30)
        say("ready", peer_id=runtime.peer_id_str)
        await asyncio.wait_for(done.wait(), args.timeout)
        return 0
    except TimeoutError:
        say("timeout")
        return 1
    finally:
        await runtime.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    from node.config import add_node_flags

    add_node_flags(parser)
    parser.add_argument("--timeout", type=float, default=60)
    sys.exit(asyncio.run(main(parser.parse_args())))
