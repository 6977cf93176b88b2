"""Telegram's send limits, shared by every worker process through Redis.

About 30 messages/s per bot, 1/s per private chat, 20/min per group (reference/telegram.md).
A send first waits its turn here; a wait that would hold a worker slot too long becomes an
arq `Retry` instead, so the slot serves other chats meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from core.retry import RetryLater

#: Waits up to this long happen in-process; longer ones are handed back to the queue.
MAX_INLINE_WAIT = 2.0


@dataclass(frozen=True)
class LimitSettings:
    total_per_second: int = 30
    private_per_second: int = 1
    group_per_minute: int = 20


class TelegramLimiter:
    def __init__(self, redis: Redis, limits: LimitSettings | None = None) -> None:
        limits = limits or LimitSettings()
        storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            connection_pool=redis.connection_pool,
            key_prefix="kadr:tg-limit",
        )
        self._limiter = MovingWindowRateLimiter(storage)
        self._total = RateLimitItemPerSecond(limits.total_per_second)
        self._private = RateLimitItemPerSecond(limits.private_per_second)
        self._group = RateLimitItemPerMinute(limits.group_per_minute)

    def _chat_item(self, chat_id: int) -> RateLimitItem:
        return self._private if chat_id > 0 else self._group

    async def acquire(self, chat_id: int, *, max_wait: float = MAX_INLINE_WAIT) -> None:
        """Take one message slot for `chat_id`, waiting inline up to `max_wait` seconds."""
        deadline = time.monotonic() + max_wait
        chat_item, chat_key = self._chat_item(chat_id), str(chat_id)
        while True:
            delay = await self._delay(chat_item, chat_key)
            if delay == 0:
                if await self._limiter.hit(self._total, "all"):
                    if await self._limiter.hit(chat_item, chat_key):
                        return
                    delay = await self._delay(chat_item, chat_key)
                else:
                    delay = await self._delay(self._total, "all")
            if time.monotonic() + delay > deadline:
                raise RetryLater(max(delay, 0.05), "telegram send limit")
            await asyncio.sleep(max(delay, 0.01))

    async def try_acquire(self, chat_id: int) -> bool:
        """Take a slot only if one is free now: for optional sends such as progress edits."""
        chat_item, chat_key = self._chat_item(chat_id), str(chat_id)
        if not await self._limiter.test(chat_item, chat_key):
            return False
        return await self._limiter.hit(self._total, "all") and await self._limiter.hit(
            chat_item, chat_key
        )

    async def _delay(self, item: RateLimitItem, key: str) -> float:
        if await self._limiter.test(item, key):
            return 0.0
        stats = await self._limiter.get_window_stats(item, key)
        return max(stats.reset_time - time.time(), 0.01)
