"""Message filters written as coroutines.

aiogram runs a filter that is a plain callable — every magic `F` expression included — in a
thread (`asyncio.to_thread`). On a busy event loop each such hop waits for the GIL, and a text
message passes three of them on its way to the prompt handler. A `Filter` subclass is awaited
in place, so these cost a function call instead.

In a group every message would otherwise become a paid job: there the bot takes a prompt or
a photo only when it is addressed — a reply to one of its messages, or a mention of it (the
mention is taken out of the prompt). Commands are for it anyway (aiogram's `Command` checks a
`/cmd@name` is ours).
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.filters import Filter
from aiogram.types import Message

from core.telegram.seen import PRIVATE


async def addressed(message: Message, bot: Bot, text: str) -> str | None:
    """`text` as meant for the bot (its mention taken out), or None when a group message is
    not for it."""
    if message.chat.type == PRIVATE:
        return text
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot.id:
        return text
    username = (await bot.me()).username
    mention = f"@{username}" if username else None
    if mention and mention.lower() in text.lower():
        start = text.lower().index(mention.lower())
        return (text[:start] + text[start + len(mention) :]).strip()
    return None


class PlainText(Filter):
    """Text that is not a command: a prompt or an instruction; hands the handler `prompt`."""

    async def __call__(self, message: Message, bot: Bot) -> bool | dict[str, Any]:
        text = message.text or ""
        if not text or text.startswith("/"):
            return False
        prompt = await addressed(message, bot, text)
        return False if prompt is None else {"prompt": prompt}


class Picture(Filter):
    """A compressed photo or a file (which the handler checks is really an image); hands the
    handler `caption` (None without one)."""

    async def __call__(self, message: Message, bot: Bot) -> bool | dict[str, Any]:
        if message.photo is None and message.document is None:
            return False
        caption = await addressed(message, bot, message.caption or "")
        if caption is None:
            return False
        return {"caption": caption or None}
