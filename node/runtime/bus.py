"""The event bus: events (``node.events``) from either side to every sink, on the asyncio side."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from node import events as ev

logger = logging.getLogger(__name__)

EventSink = Callable[[ev.Event], None]


class EventBus:
    """Sinks are called on the asyncio loop, in order; a broken sink does not stop the others."""

    def __init__(self, loop_or_none: Callable[[], asyncio.AbstractEventLoop | None]) -> None:
        self._loop_or_none = loop_or_none
        self._sinks: list[EventSink] = []

    def subscribe(self, callback: EventSink) -> Callable[[], None]:
        """Add an event sink (called on the asyncio side); returns a function that removes it."""
        self._sinks.append(callback)

        def unsubscribe() -> None:
            if callback in self._sinks:
                self._sinks.remove(callback)

        return unsubscribe

    def emit(self, event: ev.Event) -> None:
        """Deliver ``event`` to every sink on the asyncio side (callable from trio or asyncio)."""
        loop = self._loop_or_none()
        if loop is None or loop.is_closed():
            self._dispatch(event)  # not started (or gone): deliver synchronously
            return
        try:
            loop.call_soon_threadsafe(self._dispatch, event)
        except RuntimeError:
            self._dispatch(event)  # the loop closed meanwhile: best effort

    def _dispatch(self, event: ev.Event) -> None:
        for sink in list(self._sinks):
            try:
                sink(event)
            except Exception:
                # A broken sink (UI bug) must not stop the others or the node.
                logger.exception("event sink %r failed on %s", sink, event.event)
