"""Message filters written as coroutines.

aiogram runs a filter that is a plain callable — every magic `F` expression included — in a
thread (`asyncio.to_thread`). On a busy event loop each such hop waits for the GIL, and a text
message passes three of them on its way to the prompt handler. A `Filter` subclass is awaited
in place, so these cost a function call instead.
"""

from __future__ import annotations

from aiogram.filters import Filter
from aiogram.types import Message


class PlainText(Filter):
    """Text that is not a command: a prompt or an instruction."""

    async def __call__(self, message: Message) -> bool:
        text = message.text or ""
        return bool(text) and not text.startswith("/")


class Picture(Filter):
    """A compressed photo or a file (which the handler checks is really an image)."""

    async def __call__(self, message: Message) -> bool:
        return message.photo is not None or message.document is not None
