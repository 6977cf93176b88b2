"""Live changes of chats, for the chat page: who watches which chat, and what changed there.

Bot API calls and simulated people change chats; each change is pushed to the queues of the
pages watching that chat. A chat nobody watches costs one dict lookup, so benchmarks that push
thousands of messages pay nothing for the page.
"""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

#: Changes a watcher may lag behind before it is told to start over from a snapshot: a page
#: that stopped reading must not make the stand-in hold a benchmark's worth of messages.
BACKLOG = 1000
RESYNC = "resync"


@dataclass(frozen=True, slots=True)
class Change:
    """``event`` names what happened (``message``, ``delete``, ``action``, ``toast``, or
    ``resync`` for "forget what you have"); ``data`` says to what."""

    event: str
    data: dict[str, Any] = field(default_factory=dict)


class Feed:
    def __init__(self) -> None:
        self._watchers: dict[int, set[asyncio.Queue[Change]]] = {}

    def publish(self, chat_id: int, event: str, **data: Any) -> None:
        for queue in self._watchers.get(chat_id, ()):
            _put(queue, Change(event, data))

    def resync_all(self) -> None:
        """After a reset every chat is new: watchers start over from an (empty) snapshot."""
        for queues in self._watchers.values():
            for queue in queues:
                _put(queue, Change(RESYNC))

    @contextmanager
    def watch(self, chat_id: int) -> Iterator[asyncio.Queue[Change]]:
        queue: asyncio.Queue[Change] = asyncio.Queue(BACKLOG)
        self._watchers.setdefault(chat_id, set()).add(queue)
        try:
            yield queue
        finally:
            queues = self._watchers[chat_id]
            queues.discard(queue)
            if not queues:
                del self._watchers[chat_id]


def _put(queue: asyncio.Queue[Change], change: Change) -> None:
    """A full queue is dropped for one resync: the snapshot it leads to has everything."""
    if queue.full():
        while not queue.empty():
            queue.get_nowait()
        change = Change(RESYNC)
    queue.put_nowait(change)
