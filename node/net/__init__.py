"""The network room: the only code that touches py-libp2p.

``host`` (listen, dial, ping, publish, the bootstrap's peer-list protocol), ``pubsub`` (hub-first
routing, silent relays, deep queues: the adapter over py-libp2p's private hooks), ``addrs``
(multiaddrs and peer IDs). Importing this package imports no libp2p; its submodules do.
"""
