"""The node runtime room: lifecycle and identity (``node``), event bus (``bus``), topic router
(``topics``), peer directory (``peers``), roles (``roles``, ``bootstrap``, ``provider``) and
logging (``logs``). ``node.assemble`` builds a whole node around it."""

from node.errors import RuntimeError_
from node.runtime.logs import EventLogHandler, setup_logging, tame_libp2p_logging
from node.runtime.node import PROCESS_START, NodeRuntime
from node.runtime.peers import PeerRecord, PeerView
from node.runtime.roles import Role
from node.runtime.topics import ROUTE_WAIT_S, EnvelopeHandler, RejectCounter

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
