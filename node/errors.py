"""The node's error types, in one leaf module every other room may import.

Each message is user-facing: it is shown as is (console, stderr, a command's output).
"""

from __future__ import annotations


class NodeError(Exception):
    """The node cannot do what was asked (not started, bad state, bad configuration)."""


# The name the runtime's users know it by (sessions, commands, the console).
RuntimeError_ = NodeError


class HostError(Exception):
    """A network operation failed (bad address, dial failure, timeout)."""


class DialError(HostError):
    """A dial failed; ``reason`` says why in a few words (connection refused, timed out...)."""

    def __init__(self, maddr: str, reason: str) -> None:
        super().__init__(f"dial {maddr} failed: {reason}")
        self.maddr, self.reason = maddr, reason


class PeerIdMismatch(HostError):
    """The node at the dialed address has another peer ID than the address says (the usual
    ``.env`` mismatch between ``BOOTSTRAP_KEY`` and ``BOOTSTRAP_NODE``)."""

    def __init__(self, maddr: str, expected: str, actual: str) -> None:
        super().__init__(f"the node at {maddr} is {actual}, expected {expected}")
        self.maddr, self.expected, self.actual = maddr, expected, actual


class ConfigError(ValueError):
    """A bad setting (flag, environment or .env value)."""
