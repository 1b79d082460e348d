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


class ConfigError(ValueError):
    """A bad setting (flag, environment or .env value)."""
