"""The node runtime: libp2p host and pubsub (trio), bootstrap and provider behaviour, the session
engine, SLM backends, the SQLite store, the asyncio<->trio bridge and the headless mode.

Importing this package does no work and never imports ``textual``.
"""
