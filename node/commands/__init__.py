"""Commands: the interpreter shared by the console input and headless stdin (``interpreter``),
the network commands every node has (``network``) and a provider's ``slm`` command (``slm``).
Session commands live with the session engine (``node.sessions.commands``).

Importing the package loads the interpreter only (light: ``rnet --help`` reaches it).
"""

from node.commands.interpreter import (
    Command,
    CommandError,
    Handler,
    Interpreter,
    Outcome,
    parse_int,
    usage_error,
)

__all__ = [
    "Command",
    "CommandError",
    "Handler",
    "Interpreter",
    "Outcome",
    "parse_int",
    "usage_error",
]
