"""The topic router: joined topics, what arrives on them (opened, replay-checked, handed to the
topic's handler), what this node publishes (sealed with its key) and what it rejects.

Trio side. A message that fails ``open_envelope`` (with the pubsub sender as the expected
sender) or the replay guard becomes a counted ``rejected`` event; a plain-text ``publish`` from a
console becomes a ``message`` event.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from node import events as ev
from node.errors import RuntimeError_
from node.runtime.rejects import RejectCounter, RejectReporter
from protocol.envelope import Envelope, ReplayGuard, open_envelope, seal
from protocol.errors import ProtocolError
from protocol.messages import MESH_TOPIC

if TYPE_CHECKING:
    from node.net.links import PubsubMessage
    from node.runtime.node import NodeRuntime
    from protocol.messages import Body

logger = logging.getLogger(__name__)

EnvelopeHandler = Callable[[Envelope], Awaitable[None]]
ROUTE_WAIT_S = 3.0  # longest a publish waits for a route to a freshly joined topic


@dataclass
class _Topic:
    handler: EnvelopeHandler | None
    relay_only: bool = False  # the bootstrap forwards it, takes no part: no decoding


class TopicRouter:
    def __init__(self, runtime: NodeRuntime) -> None:
        self.rt = runtime
        self.rejects = RejectCounter()
        self._other_versions: set[str] = set()  # peers told once that they speak another v
        self._reporter = RejectReporter(self.rejects, runtime.emit)
        self._reports_pending = trio.Event()
        self._topics: dict[str, _Topic] = {}
        self._mesh_handlers: dict[str, EnvelopeHandler] = {}
        self._replay = ReplayGuard()
        # pitfall 5: a restarted node must not reuse sequence numbers its old self used
        self._seq = itertools.count(time.time_ns())

    async def join_mesh(self) -> None:
        self.rt.nursery.start_soon(self.report_loop)
        await self.rt.host.subscribe(MESH_TOPIC, self.on_pubsub_message)
        self._topics[MESH_TOPIC] = _Topic(None)

    async def join_topic(self, topic: str, handler: EnvelopeHandler | None = None) -> bool:
        """Subscribe ``topic``; envelopes from others go to ``handler`` (None: message events).

        Returns False if already joined (the handler is then replaced). A topic the hub only
        relays (:meth:`relay_topic`) becomes a real subscription.
        """
        check_topic(topic)
        entry = self._topics.get(topic)
        if entry is not None and not entry.relay_only:
            entry.handler = handler
            return False
        self._topics[topic] = _Topic(handler, False)
        host = self.rt.host
        if entry is not None:
            host.unrelay(topic)  # relayed until now: a real subscription from here on
        await host.subscribe(topic, self.on_pubsub_message)
        self.rt.directory.on_topology_change()
        return True

    def relay_topic(self, topic: str) -> bool:
        """Hub: forward ``topic`` without subscribing or announcing (synchronous, so it can be
        done while the subscription that asked for it is read); its messages are not even
        decoded — CPU on the hub is the swarm's scaling limit. False if already on it."""
        check_topic(topic)
        if topic in self._topics:
            return False
        self._topics[topic] = _Topic(None, True)
        self.rt.host.relay(topic)
        return True

    async def leave_topic(self, topic: str) -> bool:
        if topic == MESH_TOPIC:
            raise RuntimeError_(
                f"{MESH_TOPIC} carries presence and the mesh map; it cannot be left"
            )
        entry = self._topics.pop(topic, None)
        if entry is None:
            return False
        if entry.relay_only:
            self.rt.host.unrelay(topic)
            return True
        await self.rt.host.unsubscribe(topic)
        self.rt.directory.on_topology_change()
        return True

    def topics(self) -> list[str]:
        return sorted(self._topics)

    def add_mesh_handler(self, kind: str, handler: EnvelopeHandler) -> None:
        """Receive envelopes of ``kind`` arriving on ``swarm/mesh`` (e.g. ``advertise``)."""
        self._mesh_handlers[kind] = handler

    def next_seq(self) -> int:
        return next(self._seq)

    # -- publishing -------------------------------------------------------------------------

    async def publish_envelope(self, topic: str, body: Body, task: str = "") -> Envelope:
        """Seal ``body`` with this node's key and publish it on ``topic``."""
        env = seal(
            body,
            task=task,
            signer=self.rt.signer,
            seq=self.next_seq(),
            ts_ms=time.time_ns() // 1_000_000,
        )
        await self._publish(topic, env.raw)
        return env

    async def publish_raw(self, topic: str, data: bytes) -> None:
        """Publish bytes as they are (the console's ``publish``: plain text)."""
        check_topic(topic)
        await self._publish(topic, data)

    async def _publish(self, topic: str, data: bytes) -> None:
        await self._await_route(topic)
        await self.rt.host.publish(topic, data)

    async def _await_route(self, topic: str) -> None:
        """Floodsub sends only to peers it knows are subscribed, so a publish right after a
        topic was joined can go nowhere. Through the hub (floodsub) there is nothing to wait
        for: every publish goes to it, and it relays a topic from the first subscription that
        reaches it. Otherwise, when someone is on the topic but no route is known, wait
        (bounded) for a peer that will carry it: the bootstrap once it subscribes (gossipsub),
        or without the bootstrap any direct peer on the topic (it floods it on)."""
        rt = self.rt
        host = rt.host
        if rt.is_hub or host.hub_connected() or host.topic_peers(topic):
            return
        boot = rt.directory.bootstrap_id
        if boot is not None and host.is_connected(boot):
            listeners = rt.directory.bootmesh_listeners(topic) - {rt.peer_id_str}
            candidates = [boot]
        else:
            listeners = set()
            candidates = [p for p in host.connected_peers() if p != boot]
        if not candidates or (topic not in self._topics and not listeners):
            return  # nobody to wait for, or nobody is on it as far as we were told
        async with trio.open_nursery() as nursery:

            async def wait_one(peer: str) -> None:
                try:
                    await host.wait_for_subscription(peer, topic, ROUTE_WAIT_S)
                except trio.TooSlowError:
                    logger.info("no peer is subscribed to %s yet; publishing anyway", topic)
                nursery.cancel_scope.cancel()

            for peer in candidates:
                nursery.start_soon(wait_one, peer)

    # -- receiving --------------------------------------------------------------------------

    def reject(self, reason: str, sender: str, topic: str, detail: str = "") -> None:
        """Count and report a message that failed validation (also usable by extensions).

        Counted always; reported as a ``rejected`` event at most once per sender per interval
        (then one summary line, ``node.runtime.rejects``), so a hostile peer cannot flood the
        log or ``--json``."""
        if reason == "unknown_version" and sender not in self._other_versions:
            # A wire change bumps the version (protocol v2: blind judging): say so once per
            # peer, plainly; its messages keep being counted as rejected.
            self._other_versions.add(sender)
            self.rt.emit(
                ev.Error(
                    message=f"peer {sender[-6:]} speaks another wire protocol ({detail}): "
                    "this node ignores its messages and sessions; run the same rnet version",
                    source="network",
                )
            )
        if self._reporter.note(reason, sender, topic, detail, time.monotonic()) is None:
            self._reports_pending.set()
            return
        logger.info(
            "rejected %s from %s on %s (%d from it so far): %s",
            reason,
            sender[-6:],
            topic or "-",
            self.rejects.from_sender(sender),
            detail,
        )

    async def report_loop(self) -> None:
        """Emit the per-sender rejection summaries once their interval is over."""
        while True:
            await self._reports_pending.wait()
            self._reports_pending = trio.Event()
            await trio.sleep(self._reporter.interval)
            self._reporter.flush(time.monotonic(), force=True)

    async def on_pubsub_message(self, msg: PubsubMessage) -> None:
        topic = msg.topic
        entry = self._topics.get(topic)
        if entry is None or entry.relay_only:
            return  # left the topic while the message was queued, or only relaying it
        try:
            env = open_envelope(msg.data, expected_sender=msg.from_id)
        except ProtocolError as exc:
            text = _plain_text(msg.data)
            if (
                topic != MESH_TOPIC
                and text is not None
                and exc.reason in ("not_msgpack", "bad_type")
            ):
                # A plain `publish <topic> <msg>` from a console: shown, not a protocol message.
                if not self.rt.is_hub:
                    self.rt.emit(ev.Message(topic=topic, sender=msg.sender, kind="text", text=text))
                return
            self.reject(exc.reason, msg.sender, topic, str(exc))
            return
        try:
            self._replay.check(env)
        except ProtocolError as exc:
            self.reject(exc.reason, msg.sender, topic, str(exc))
            return
        membership = self.rt.membership
        session_kind = env.kind not in ("presence", "bootmesh")
        if membership.closed and session_kind and not membership.is_member(env.sender):
            # a closed swarm: no session message from a peer without a certificate counts
            self.reject("not_member", msg.sender, topic, f"{env.kind} from a non-member")
            return
        if topic == MESH_TOPIC:
            await self._on_mesh_envelope(env, msg)
            return
        if entry.handler is not None:
            await entry.handler(env)
        elif not self.rt.is_hub:
            self.rt.emit(
                ev.Message(topic=topic, sender=msg.sender, kind=env.kind, text=_summary(env))
            )

    async def _on_mesh_envelope(self, env: Envelope, msg: PubsubMessage) -> None:
        kind = env.kind
        directory = self.rt.directory
        if kind == "presence":
            directory.apply_presence(msg.sender, env)
        elif kind == "bootmesh":
            directory.apply_bootmesh(msg.sender, env)
        else:
            handler = self._mesh_handlers.get(kind)
            if handler is not None:
                await handler(env)
            elif not self.rt.is_hub:
                self.rt.emit(
                    ev.Message(topic=MESH_TOPIC, sender=msg.sender, kind=kind, text=_summary(env))
                )


def check_topic(topic: str) -> None:
    if not topic or len(topic) > 128 or any(c.isspace() for c in topic):
        raise RuntimeError_(f"bad topic name {topic!r} (1-128 characters, no spaces)")


def _plain_text(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(ord(c) < 32 and c not in "\t\n\r" for c in text):
        return None
    return text


def _summary(env: Envelope) -> str:
    body = env.body
    for attr in ("text", "prompt", "reason", "name"):
        value = getattr(body, attr, None)
        if isinstance(value, str) and value:
            return f"{env.kind}: {value[:200]}"
    return f"{env.kind} (task {env.task or '-'})"
