"""Telegram's send limits, shared by every worker process through Redis.

About 30 messages/s per bot, 1/s per private chat, 20/min per group (reference/telegram.md).
Each send reserves a moment to go, GCRA-style: one Redis script keeps, per bot and per chat,
the earliest time the next message may leave, so sends are spaced evenly (one every 1/30 s)
instead of leaving in bursts that a moving window would allow and network jitter would push
over the limit. A wait that would hold a worker slot too long is handed back to the queue
(`RetryLater`) without reserving anything, so no slot is wasted on a task that is not there.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis.asyncio import Redis

from core.retry import RetryLater

#: Waits up to this long happen in-process; longer ones are handed back to the queue.
MAX_INLINE_WAIT = 2.0

# KEYS: bot-wide key, chat key. ARGV: bot interval, chat interval, longest acceptable wait.
# Returns the wait before sending (a reservation was made) or, negative, how long until a
# reservation could be had (nothing was reserved).
_RESERVE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local bot_next = tonumber(redis.call('GET', KEYS[1]) or '0')
local chat_next = tonumber(redis.call('GET', KEYS[2]) or '0')
local start = math.max(now, bot_next)
if chat_next > start then
  return tostring(-(chat_next - now))
end
local wait = start - now
if wait > tonumber(ARGV[3]) then
  return tostring(-wait)
end
local bot_after = start + tonumber(ARGV[1])
local chat_after = start + tonumber(ARGV[2])
redis.call('SET', KEYS[1], tostring(bot_after), 'PX', math.ceil((bot_after - now) * 1000) + 1000)
redis.call('SET', KEYS[2], tostring(chat_after), 'PX', math.ceil((chat_after - now) * 1000) + 1000)
return tostring(wait)
"""


@dataclass(frozen=True)
class LimitSettings:
    total_per_second: float = 30
    private_per_second: float = 1
    group_per_minute: float = 20


class TelegramLimiter:
    def __init__(self, redis: Redis, limits: LimitSettings | None = None) -> None:
        limits = limits or LimitSettings()
        self._redis = redis
        self._reserve = redis.register_script(_RESERVE)
        self._bot_interval = 1 / limits.total_per_second
        self._private_interval = 1 / limits.private_per_second
        self._group_interval = 60 / limits.group_per_minute

    async def _try(self, chat_id: int, max_wait: float) -> float:
        interval = self._private_interval if chat_id > 0 else self._group_interval
        keys = ["kadr:tg-next:bot", f"kadr:tg-next:{chat_id}"]
        return float(await self._reserve(keys=keys, args=[self._bot_interval, interval, max_wait]))

    async def acquire(self, chat_id: int, *, max_wait: float = MAX_INLINE_WAIT) -> None:
        """Reserve the next free moment for a message to `chat_id` and wait for it; when that
        is more than `max_wait` away, raise RetryLater instead.

        A process that was stalled (CPU starved, long GC) wakes past its moment together with
        every other sender it holds; sending then would be a burst. So a sender that wakes
        late gives its moment up and reserves a fresh one.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait
        while True:
            wait = await self._try(chat_id, max(deadline - loop.time(), 0.0))
            if wait < 0:
                # Nothing reserved: the chat (or the bot) is busy for -wait seconds.
                if loop.time() - wait > deadline:
                    raise RetryLater(-wait, "telegram send limit")
                await asyncio.sleep(-wait)
                continue
            due = loop.time() + wait
            if wait > 0:
                await asyncio.sleep(wait)
            if loop.time() - due <= self._bot_interval / 2:
                return

    async def try_acquire(self, chat_id: int) -> bool:
        """Take a moment only if one is free now: for optional sends such as progress edits."""
        return await self._try(chat_id, 0.0) == 0.0
