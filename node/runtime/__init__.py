"""The node runtime room: lifecycle and identity (``node``), event bus (``bus``), topic router
(``topics``), peer directory (``peers``), roles (``roles``, ``bootstrap``, ``provider``) and
logging (``logs``). ``node.assemble`` builds a whole node around it.

Extension points (for the sessions engine, the console, the gateway)
--------------------------------------------------------------------
Trio side (call from trio tasks, e.g. inside handlers or tasks started in ``runtime.nursery``):

(a) ``await runtime.join_topic(topic, handler)`` / ``await runtime.leave_topic(topic)``:
    subscribe a topic; ``handler(env: protocol.envelope.Envelope) -> Awaitable[None]`` is called
    in trio for every envelope from another peer that passed ``open_envelope`` (with the pubsub
    sender as ``expected_sender``) and the replay guard. Failures become ``rejected`` events.
    ``handler=None`` shows the topic's traffic as ``message`` events (the console's ``join``).
    ``runtime.add_mesh_handler(kind, handler)`` receives kinds on ``swarm/mesh`` other than
    presence/bootmesh (e.g. ``advertise``).
(b) ``await runtime.publish_envelope(topic, body, task) -> Envelope``: seal with the node key
    (seq from a per-node counter starting at ``time.time_ns()``) and publish.
(c) ``runtime.emit(event)``: hand an event (``node.events``) to every sink; callable from either
    side; sinks are called on the asyncio side, in order.
(d) ``runtime.nursery``: the trio nursery for background tasks (``runtime.nursery.start_soon``).
(e) ``await runtime.run_asyncio(coro_fn, *args)``: from trio, await an asyncio coroutine (model
    calls: ollama's client is httpx/asyncio). The other way, from asyncio:
    ``await runtime.call(trio_fn, *args)`` runs a trio function and returns its result.
(f) ``runtime.interpreter``: the command :class:`~node.commands.Interpreter`;
    ``runtime.interpreter.register(name, usage, help, handler)``; handlers run on asyncio.
(g) ``runtime.peers()``: snapshot list of :class:`PeerView` (id, name, role, model, backend,
    rtt, addrs, connected) for every peer currently known online; ``runtime.provider_peers()``
    the providers only.

Also: ``runtime.subscribe(callback) -> unsubscribe`` (event sink), ``await runtime.execute(line)``
(run a command line, emits and returns ``command_output``), ``runtime.peer_id`` (bytes),
``runtime.peer_id_str``, ``runtime.signer``, ``runtime.config``, ``runtime.ready``,
``runtime.set_presence(model, backend)``, ``runtime.on_close(async_fn)`` (trio cleanup before the
host closes), ``runtime.reject(reason, sender, topic, detail)`` (count + ``rejected`` event for a
message an extension found invalid).

Publishing returns as soon as the message is queued; it waits (bounded, ``ROUTE_WAIT_S``) only
when no route is known yet for a topic someone is on.
"""

from node.errors import RuntimeError_
from node.runtime.logs import EventLogHandler, setup_logging, tame_libp2p_logging
from node.runtime.node import PROCESS_START, NodeRuntime
from node.runtime.peers import PeerRecord, PeerView
from node.runtime.rejects import RejectCounter
from node.runtime.roles import Role
from node.runtime.topics import ROUTE_WAIT_S, EnvelopeHandler

__all__ = [
    "PROCESS_START",
    "ROUTE_WAIT_S",
    "EnvelopeHandler",
    "EventLogHandler",
    "NodeRuntime",
    "PeerRecord",
    "PeerView",
    "RejectCounter",
    "Role",
    "RuntimeError_",
    "setup_logging",
    "tame_libp2p_logging",
]
