"""Fan-out of server events (new transmissions, corrections, frequency status) to open pages.

Events are published from any thread (the live recogniser threads, request handlers) and
delivered to each subscriber's asyncio queue on the server's event loop. A page that stops
reading (a stalled tab, a client that opened the stream and went away without closing it)
fills its bounded queue and is dropped: it can never slow the live loop or hold memory.
The last :attr:`Hub.history` events are kept so a reconnecting browser (``Last-Event-ID``)
receives what it missed.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ..log import get_logger

log = get_logger(__name__)

#: Events a page may fall behind by before it is dropped (it reconnects and catches up).
SUBSCRIBER_QUEUE = 256


@dataclass(frozen=True)
class Event:
    """One server-sent event: ``kind`` is the SSE event name, ``seq`` its id, ``data`` the JSON payload."""

    seq: int
    kind: str
    data: dict[str, Any]


class Hub:
    """Thread-safe publish, asyncio subscribe.

    Args:
        history: Events kept for reconnecting pages.
    """

    def __init__(self, history: int = 500) -> None:
        self.history = history
        self._recent: deque[Event] = deque(maxlen=history)
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._subscribers: set[asyncio.Queue[Event | None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.dropped = 0

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver to subscribers on ``loop`` (the server's event loop)."""
        self._loop = loop

    def publish(self, kind: str, data: dict[str, Any]) -> Event:
        """Send an event to every subscriber; callable from any thread."""
        with self._lock:
            event = Event(next(self._seq), kind, data)
            self._recent.append(event)
            loop, subscribers = self._loop, list(self._subscribers)
        if loop is not None and subscribers and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._deliver, event)
            except RuntimeError:  # the loop closed in between: the server is gone
                pass
        return event

    def _deliver(self, event: Event) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self._subscribers.discard(queue)
                self.dropped += 1
                log.warning("a page stopped reading its event stream; dropped it (it reconnects and catches up)")
                self._end(queue)

    @staticmethod
    def _end(queue: asyncio.Queue[Event | None]) -> None:
        # Make room for the end marker so the subscriber's generator returns.
        while True:
            try:
                queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                queue.get_nowait()

    async def subscribe(self, after: int = 0) -> AsyncIterator[Event]:
        """Events after ``after`` (replayed from history), then new ones until :meth:`close`."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        with self._lock:
            if self._closed:
                return
            backlog = [e for e in self._recent if e.seq > after]
            self._subscribers.add(queue)
        try:
            for event in backlog[-SUBSCRIBER_QUEUE:]:
                yield event
            while True:
                item = await queue.get()
                if item is None:
                    return
                yield item
        finally:
            self._subscribers.discard(queue)

    @property
    def subscribers(self) -> int:
        """Pages connected now."""
        return len(self._subscribers)

    def close(self) -> None:
        """End every subscription (the server is stopping); callable from any thread."""
        with self._lock:
            self._closed = True
            loop = self._loop
        if loop is None or loop.is_closed():
            return

        def end_all() -> None:
            for queue in list(self._subscribers):
                self._end(queue)
            self._subscribers.clear()

        try:
            loop.call_soon_threadsafe(end_all)
        except RuntimeError:
            pass
