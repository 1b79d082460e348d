"""A hostile peer: a real node (the project's own runtime, a real libp2p host) that breaks the rules.

Run as ``python -m tests.hostile.attacker --bootstrap MADDR --data-dir D``. It connects to the
bootstrap like any provider (no sessions engine), prints ``{"attacker": "ready", ...}`` and then
reads one JSON command per line on stdin; every command is answered by one JSON line
``{"attacker": <do>, ...}`` once it is done. Everything goes out over its ONE connection to the
hub, written straight into libp2p's outbound queue, so it can do what a well-behaved pubsub never
would:

- ``{"do": "sybil", "keys": N}``: from now on, answer every advertisement with ``join``s from N
  fresh identities (each envelope and each pubsub message signed by its own key, all sent
  through this one connection). Reports ``joined`` lines per session.
- ``{"do": "garbage", "n": N, "topic": T}``: N malformed messages (random bytes, validly signed
  at the pubsub level by this node's own key) on topic T (default ``swarm/mesh``).
- ``{"do": "forged", "n": N}``: N well-formed presence envelopes whose *pubsub* origin is a fresh
  key each, i.e. messages this leaf forwards "for" peers the hub never saw.
- ``{"do": "oversize", "n": N, "bytes": B}``: N RPCs bigger than libp2p's 1 MiB frame limit.
- ``{"do": "subscribe", "topics": [..]}`` or ``{"do": "subscribe", "count": N, "chars": C}``:
  subscription announcements (e.g. one 200-character topic, or 300 topics).
- ``{"do": "adverts", "n": N, "join_ms": J, "keys": K}``: N advertisements with long deadlines
  (from this node, or spread over K fresh identities).
- ``{"do": "quit"}``.

The attacker never waits on the victim: only libp2p's queue depth slows it down (so a burst is
delivered, not dropped in our own queue).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import sys
import time
from typing import Any

logger = logging.getLogger(__name__)
MESH_TOPIC = "swarm/mesh"
QUEUE_HIGH_WATER = 2_000


def say(what: str, **fields: object) -> None:
    print(json.dumps({"attacker": what, **fields}), flush=True)


class Attacker:
    """The trio-side tools: fresh identities and raw pubsub RPCs to the hub."""

    def __init__(self, runtime: Any) -> None:
        from libp2p.crypto.ed25519 import create_new_key_pair

        self.rt = runtime
        self._new_keypair = create_new_key_pair
        self._seqno = itertools.count(time.time_ns())
        self._env_seq = itertools.count(time.time_ns())
        self.sybils: list[Any] = []  # (keypair, signer)
        self.joined_tasks: set[str] = set()
        self.roles: dict[str, dict[str, Any]] = {}

    # -- identities ----------------------------------------------------------------------------

    def make_sybils(self, n: int) -> None:
        from node.keys import Libp2pSigner

        while len(self.sybils) < n:
            kp = self._new_keypair(os.urandom(32))
            self.sybils.append((kp, Libp2pSigner(kp)))

    # -- raw pubsub ----------------------------------------------------------------------------

    def _hub(self) -> Any:
        from libp2p.peer.id import ID

        boot = self.rt.bootstrap_id
        if boot is None:
            raise RuntimeError("no bootstrap")
        return ID.from_base58(boot)

    def _message(self, topic: str, data: bytes, keypair: Any | None) -> Any:
        from libp2p.peer.id import ID
        from libp2p.pubsub.pb import rpc_pb2
        from libp2p.pubsub.validators import PUBSUB_SIGNING_PREFIX

        if keypair is None:
            keypair = self.rt.host.host.get_private_key(), self.rt.host.host.get_public_key()
            private, public = keypair
        else:
            private, public = keypair.private_key, keypair.public_key
        msg = rpc_pb2.Message(
            data=data,
            topicIDs=[topic],
            from_id=ID.from_pubkey(public).to_bytes(),
            seqno=next(self._seqno).to_bytes(8, "big"),
        )
        msg.signature = private.sign(PUBSUB_SIGNING_PREFIX.encode() + msg.SerializeToString())
        msg.key = public.serialize()
        return msg

    async def send_rpc(self, rpc: Any) -> bool:
        import trio

        pubsub = self.rt.host.pubsub
        hub = self._hub()
        while True:
            queue = pubsub.peer_queues.get(hub)
            if queue is None:
                return False  # the hub dropped us (or died)
            if len(queue) < QUEUE_HIGH_WATER:
                return bool(queue.push(rpc))
            await trio.sleep(0.002)

    async def inject(self, topic: str, data: bytes, keypair: Any | None = None) -> bool:
        from libp2p.pubsub.pb import rpc_pb2

        return await self.send_rpc(rpc_pb2.RPC(publish=[self._message(topic, data, keypair)]))

    def seal(self, body: Any, task: str, signer: Any) -> bytes:
        from protocol.envelope import seal

        env = seal(
            body, task=task, signer=signer, seq=next(self._env_seq), ts_ms=time.time_ns() // 10**6
        )
        return env.raw

    # -- attacks -------------------------------------------------------------------------------

    async def sybil_join(self, task: str) -> int:
        from protocol.envelope import topic_for
        from protocol.messages import Join

        if task in self.joined_tasks:
            return 0
        self.joined_tasks.add(task)
        sent = 0
        for kp, signer in self.sybils:
            raw = self.seal(Join("sybil-model", "sim"), task, signer)
            sent += await self.inject(topic_for("join", task), raw, kp)
        return sent

    async def play(self, task: str, env: Any) -> None:
        """The sybils' roles in a session they got into: their executors answer at once, their
        verifiers give every sybil answer 0.99 and every honest one 0.00 (collusion)."""
        from protocol.envelope import topic_for
        from protocol.messages import Assign, Response

        mine = {signer.peer_id: (kp, signer) for kp, signer in self.sybils}
        roles = self.roles.setdefault(task, {"executors": (), "verifiers": ()})
        if isinstance(env.body, Assign):
            roles["executors"], roles["verifiers"] = env.body.executors, env.body.verifiers
            for peer in env.body.executors:
                if peer in mine:
                    kp, signer = mine[peer]
                    raw = self.seal(Response("SYBIL ANSWER", "sybil-model", 1), task, signer)
                    await self.inject(topic_for("response", task), raw, kp)
                    await self._score(task, peer, mine)
        elif isinstance(env.body, Response) and env.sender not in mine:
            await self._score(task, env.sender, mine)

    async def _score(self, task: str, executor: bytes, mine: dict[bytes, Any]) -> None:
        from protocol.envelope import topic_for
        from protocol.messages import Score

        value = 0.99 if executor in mine else 0.0
        for peer in self.roles[task]["verifiers"]:
            if peer in mine and peer != executor:
                kp, signer = mine[peer]
                raw = self.seal(Score(executor, value, "collusion", "sybil-model"), task, signer)
                await self.inject(topic_for("score", task), raw, kp)

    async def garbage(self, n: int, topic: str) -> int:
        sent = 0
        for i in range(n):
            sent += await self.inject(topic, b"\x93garbage" + os.urandom(24) + i.to_bytes(4, "big"))
        return sent

    async def forged(self, n: int) -> int:
        from protocol.messages import Presence

        self.make_sybils(n)
        sent = 0
        for kp, signer in self.sybils[:n]:
            raw = self.seal(Presence(name="ghost", role="provider"), "", signer)
            sent += await self.inject(MESH_TOPIC, raw, kp)
        return sent

    async def oversize(self, n: int, size: int) -> int:
        sent = 0
        for _ in range(n):
            sent += await self.inject(MESH_TOPIC, os.urandom(size))
        return sent

    async def subscribe(self, topics: list[str]) -> int:
        from libp2p.pubsub.pb import rpc_pb2

        sent = 0
        for topic in topics:
            sub = rpc_pb2.RPC.SubOpts(subscribe=True, topicid=topic)
            sent += await self.send_rpc(rpc_pb2.RPC(subscriptions=[sub]))
        return sent

    async def adverts(self, n: int, join_ms: int, keys: int) -> list[str]:
        from protocol.messages import Advertise

        tasks = []
        if keys:
            self.make_sybils(keys)
        for i in range(n):
            task = f"flood-{os.urandom(4).hex()}-{i}"
            body = Advertise(
                prompt="hold this slot",
                wanted=0,
                join_ms=join_ms,
                exec_ms=join_ms,
                verify_ms=join_ms,
            )
            if keys:
                kp, signer = self.sybils[i % keys]
                await self.inject(MESH_TOPIC, self.seal(body, task, signer), kp)
            else:
                await self.inject(MESH_TOPIC, self.seal(body, task, self.rt.signer))
            tasks.append(task)
        return tasks


async def main(args: argparse.Namespace) -> int:
    from node.config import resolve_node_config
    from node.runtime import NodeRuntime, setup_logging
    from protocol.messages import Advertise

    setup_logging("warning", stream=sys.stderr)
    config = resolve_node_config(args, "provider")
    runtime = NodeRuntime(config)
    await runtime.start()
    ready = asyncio.Event()
    runtime.subscribe(lambda e: ready.set() if e.event == "ready" else None)
    if not runtime.ready:
        await asyncio.wait_for(ready.wait(), 30)
    attacker = await runtime.call(_make, runtime)

    async def on_advertise(env: Any) -> None:
        if attacker.sybils and isinstance(env.body, Advertise) and env.sender != runtime.peer_id:
            await runtime.join_topic(env.task, lambda e: attacker.play(e.task, e))
            sent = await attacker.sybil_join(env.task)
            if sent:
                say("joined", task=env.task, keys=sent)

    runtime.add_mesh_handler("advertise", on_advertise)
    say("ready", peer_id=runtime.peer_id_str)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := await reader.readline():
            try:
                cmd = json.loads(line)
                if cmd.get("do") == "quit":
                    break
                started = time.monotonic()
                out = await runtime.call(_run, attacker, cmd)
                say(cmd["do"], seconds=round(time.monotonic() - started, 3), **out)
            except Exception as exc:
                say("error", error=f"{type(exc).__name__}: {exc}")
        return 0
    finally:
        await runtime.aclose()


async def _make(runtime: Any) -> Attacker:
    return Attacker(runtime)


async def _run(attacker: Attacker, cmd: dict[str, Any]) -> dict[str, Any]:
    do = cmd["do"]
    if do == "sybil":
        attacker.make_sybils(int(cmd["keys"]))
        return {"keys": len(attacker.sybils)}
    if do == "garbage":
        return {"sent": await attacker.garbage(int(cmd["n"]), cmd.get("topic", MESH_TOPIC))}
    if do == "forged":
        return {"sent": await attacker.forged(int(cmd["n"]))}
    if do == "oversize":
        return {"sent": await attacker.oversize(int(cmd["n"]), int(cmd.get("bytes", 1_200_000)))}
    if do == "subscribe":
        topics = cmd.get("topics") or [
            f"t{i:04d}".ljust(int(cmd.get("chars", 8)), "x") for i in range(int(cmd["count"]))
        ]
        return {"sent": await attacker.subscribe(topics)}
    if do == "adverts":
        tasks = await attacker.adverts(
            int(cmd["n"]), int(cmd.get("join_ms", 3_600_000)), int(cmd.get("keys", 0))
        )
        return {"tasks": tasks}
    raise ValueError(f"unknown command {do!r}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    from node.config import add_node_flags

    add_node_flags(parser)
    sys.exit(asyncio.run(main(parser.parse_args())))
