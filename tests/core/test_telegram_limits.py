"""The shared send limiter against a real Redis: even spacing, per-chat limits, no waste."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from redis.asyncio import Redis

from core.retry import RetryLater
from core.telegram_limits import LimitSettings, TelegramLimiter


@pytest.fixture
async def redis(redis_url: str):  # type: ignore[no-untyped-def]
    client = Redis.from_url(redis_url)
    await client.delete("kadr:tg-next:bot")
    yield client
    await client.aclose()


def chats(n: int) -> list[int]:
    base = uuid.uuid4().int % 10**9
    return [base + i for i in range(n)]


async def test_sends_to_many_chats_are_spaced_at_the_bot_rate(redis: Redis) -> None:
    limiter = TelegramLimiter(redis, LimitSettings(total_per_second=20))
    stamps: list[float] = []

    async def send(chat: int) -> None:
        await limiter.acquire(chat, max_wait=5)
        stamps.append(time.monotonic())

    await asyncio.gather(*(send(chat) for chat in chats(30)))
    stamps.sort()
    assert len(stamps) == 30
    assert sum(1 for s in stamps if s - stamps[0] < 1.0) <= 21


async def test_a_second_message_to_one_chat_waits_or_is_deferred(redis: Redis) -> None:
    limiter = TelegramLimiter(redis)
    [chat] = chats(1)
    await limiter.acquire(chat)
    with pytest.raises(RetryLater) as later:
        await limiter.acquire(chat, max_wait=0.1)
    assert 0.5 < later.value.delay <= 1.0
    assert not await limiter.try_acquire(chat)


async def test_groups_get_twenty_a_minute(redis: Redis) -> None:
    limiter = TelegramLimiter(redis)
    group = -chats(1)[0]
    await limiter.acquire(group)
    with pytest.raises(RetryLater) as later:
        await limiter.acquire(group, max_wait=0)
    assert 2.5 < later.value.delay <= 3.0


async def test_a_backlog_defers_each_sender_once_to_a_moment_held_for_it(redis: Redis) -> None:
    """Forty results due at once at 20/s: whoever cannot go within its wait comes back once,
    at the moment held for it, instead of all coming back together and mostly failing."""
    limiter = TelegramLimiter(redis, LimitSettings(total_per_second=20))
    stamps: list[float] = []
    tries: list[int] = []

    async def deliver(chat: int) -> None:
        for attempt in range(1, 10):
            try:
                await limiter.acquire(chat, max_wait=0.3)
            except RetryLater as later:
                await asyncio.sleep(later.delay + 0.05)  # the queue hands it back a bit late
                continue
            stamps.append(time.monotonic())
            tries.append(attempt)
            return

    await asyncio.gather(*(deliver(chat) for chat in chats(40)))
    stamps.sort()
    assert len(stamps) == 40
    assert max(tries) == 2
    assert max(sum(1 for t in stamps if s <= t < s + 1.0) for s in stamps) <= 21
