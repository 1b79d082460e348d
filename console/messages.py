"""Textual Messages of the console: small dataclasses, panes post them up, the App handles them."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class EventsArrived(Message):
    """The runtime queued events for the UI. A wake-up only: the events wait in the App's inbox.

    Bursts coalesce: the App posts one per batch (and a newer one would replace a queued one),
    so 1,000 runtime events cost one message and one fold-and-repaint, not 1,000.
    """

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EventsArrived)


@dataclass
class CommandSubmitted(Message):
    """The user entered an interpreter command line (command input or a modal)."""

    line: str
    """The command line, e.g. ``pipe 3 What is 2+2?``."""


@dataclass
class SessionSelected(Message):
    """The user moved the sessions pane's cursor to a session."""

    task: str
    """The session's task id (its topic)."""


@dataclass
class ShowText(Message):
    """Show a long text (a response, the winning answer) in a viewer."""

    title: str
    text: str
