"""py-libp2p's private hooks that node/net/pubsub.py (the one adapter) relies on, pinned by name
and signature: an upgrade that renames or reshapes one fails here, by name, before the
behaviour tests (tests/node/test_host.py) fail in some less obvious way."""

from __future__ import annotations

import inspect

import pytest
from libp2p.pubsub import pubsub as pubsub_module
from libp2p.pubsub.floodsub import FloodSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.rpc_queue import RpcQueue

from node.net import pubsub as adapter

# (class, method, the parameters we pass or override, in order, after self)
HOOKS = [
    (Pubsub, "_handle_dead_peer", ["peer_id"]),
    (Pubsub, "_is_subscribed_to_msg", ["msg"]),
    (Pubsub, "_peer_is_connected", ["peer_id"]),
    (Pubsub, "_enqueue_or_retry_announce", ["peer_id", "queue", "rpc_msg", "announce"]),
    (Pubsub, "message_all_peers", ["raw_msg", "announce"]),
    (Pubsub, "handle_subscription", ["origin_id", "sub_message"]),
    (Pubsub, "get_hello_packet", []),
    (FloodSub, "_get_peers_to_send", ["topic_ids", "msg_forwarder", "origin"]),
    # node/net/guarded.py (the guard's hooks)
    (Pubsub, "push_msg", ["msg_forwarder", "msg"]),
    (Pubsub, "continuously_read_stream", ["stream"]),
    (Pubsub, "_is_msg_seen", ["msg"]),
    (Pubsub, "add_to_blacklist", ["peer_id"]),
    (Pubsub, "remove_from_blacklist", ["peer_id"]),
]


@pytest.mark.parametrize(("cls", "name", "params"), HOOKS, ids=[h[1] for h in HOOKS])
def test_private_hook_still_has_its_shape(cls: type, name: str, params: list[str]) -> None:
    method = getattr(cls, name, None)
    assert method is not None, f"{cls.__name__}.{name} is gone: update node/net/pubsub.py"
    got = list(inspect.signature(method).parameters)[1:]
    assert got == params, f"{cls.__name__}.{name}{got}: node/net/pubsub.py expects {params}"


def test_pubsub_reads_its_queue_settings_from_the_module_at_call_time() -> None:
    # deepen_pubsub_queues() swaps these two module attributes; Pubsub must look them up there.
    source = inspect.getsource(pubsub_module)
    assert "RpcQueue(" in source and "SUBSCRIPTION_CHANNEL_SIZE" in source
    assert issubclass(adapter.DeepRpcQueue, RpcQueue)
    assert "max_size" in inspect.signature(RpcQueue.__init__).parameters


def test_pubsub_state_the_adapter_reads_is_still_there() -> None:
    # Instance attributes set in Pubsub.__init__ (read by the adapter and node/net/host.py).
    init = inspect.getsource(Pubsub.__init__)
    for attr in (
        "peer_queues",
        "peers",
        "peer_topics",
        "counter",
        "seen_messages",
        "_peer_subscription_count",  # the guard's per-peer topic count
    ):
        assert f"self.{attr}" in init, f"Pubsub no longer sets self.{attr}"
    assert isinstance(inspect.getattr_static(Pubsub, "topic_ids"), property)


def test_pubsub_reads_its_frame_reader_from_the_module_at_call_time() -> None:
    # node/net/guarded.count_oversize_frames wraps this module attribute to count the frames
    # libp2p refuses as too large (it raises MessageTooLarge from it, then resets the stream).
    source = inspect.getsource(Pubsub.continuously_read_stream)
    assert "read_varint_prefixed_bytes_limited(" in source
    assert "MessageTooLarge" in source
    assert callable(pubsub_module.read_varint_prefixed_bytes_limited)
