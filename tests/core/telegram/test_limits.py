"""The shared send limiter against a real Redis: even spacing, per-chat limits, no waste.

What the limiter answers is asserted (the moments it hands out and holds, who is deferred and
how often), never when sends happened: the pace they reach is the benchmark's to measure
(`tg messages/s peak`, `seconds over 30 messages`, `results/s vs 30` in bench/analysis.py)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from itertools import pairwise
from typing import Any

import pytest
from redis.asyncio import Redis

from core.infra.retry import RetryLater
from core.telegram.limits import (
    BOT_KEY,
    EARLY_RETURN,
    YIELD_HORIZON,
    SendLimits,
    TelegramLimiter,
)


def chats(n: int) -> list[int]:
    base = uuid.uuid4().int % 10**9
    return [base + i for i in range(n)]


async def test_sends_to_many_chats_are_given_moments_spaced_at_the_bot_rate(redis: Redis) -> None:
    """Thirty sends at once to thirty chats: one goes, each other is held a moment of its own,
    one bot interval after the one before. The bot's rate is one a second here, so no stall
    of the test's own can put two sends in one interval."""
    limiter = TelegramLimiter(redis, SendLimits(total_per_second=1))
    targets = chats(30)
    gone: list[int] = []

    async def send(chat: int) -> None:
        with contextlib.suppress(RetryLater):
            await limiter.acquire(chat, max_wait=0)
            gone.append(chat)

    await asyncio.gather(*(send(chat) for chat in targets))
    held = [v for v in await redis.mget([f"kadr:tg-held:{chat}" for chat in targets]) if v]
    moments = sorted(float(v) for v in [*held, await redis.get(BOT_KEY)])

    assert len(gone) == 1
    assert len(held) == 29
    assert all(b - a == pytest.approx(1.0, abs=1e-3) for a, b in pairwise(moments))


async def test_a_second_message_to_one_chat_waits_or_is_deferred(redis: Redis) -> None:
    limiter = TelegramLimiter(redis)
    [chat] = chats(1)
    await limiter.acquire(chat)
    with pytest.raises(RetryLater) as later:
        await limiter.acquire(chat, max_wait=0.1)
    assert 0 < later.value.delay <= 1.0
    assert not await limiter.try_acquire(chat)


async def test_groups_get_twenty_a_minute(redis: Redis) -> None:
    limiter = TelegramLimiter(redis)
    group = -chats(1)[0]
    await limiter.acquire(group)
    with pytest.raises(RetryLater) as later:
        await limiter.acquire(group, max_wait=0)
    assert 0 < later.value.delay <= 3.0


async def test_a_backlog_defers_each_sender_once_to_a_moment_held_for_it(redis: Redis) -> None:
    """Forty results due at once at 20/s: whoever cannot go within its wait comes back once,
    at the moment held for it, instead of all coming back together and mostly failing."""
    limiter = TelegramLimiter(redis, SendLimits(total_per_second=20))
    tries: list[int] = []

    async def deliver(chat: int) -> None:
        for attempt in range(1, 10):
            try:
                await limiter.acquire(chat, max_wait=0.3)
            except RetryLater as later:
                await asyncio.sleep(later.delay + 0.05)  # the queue hands it back a bit late
                continue
            tries.append(attempt)
            return

    await asyncio.gather(*(deliver(chat) for chat in chats(40)))
    assert len(tries) == 40
    assert max(tries) == 2


async def test_results_queued_at_once_come_in_line_and_none_of_their_moments_is_lost(
    redis: Redis,
) -> None:
    """Sixty results queued at once at 20/s, each kept back as its place in line says, some
    coming late: all are sent, each tried once, none deferred."""
    limiter = TelegramLimiter(redis, SendLimits(total_per_second=20))
    delays = [await limiter.place_in_line() for _ in range(60)]
    assert delays == sorted(delays)
    assert delays[:20] == [0.0] * 20
    assert 0 < delays[-1] < 3.0 - EARLY_RETURN
    sent: list[int] = []

    async def deliver(chat: int, delay: float) -> None:
        late = 0.3 if chat % 5 == 0 else 0.0  # the queue hands some back late
        await asyncio.sleep(delay + late)
        await limiter.acquire(chat, max_wait=2 * EARLY_RETURN)
        sent.append(chat)

    await asyncio.gather(*(deliver(chat, d) for chat, d in zip(chats(60), delays, strict=True)))
    assert len(sent) == 60


async def test_replies_yield_to_results_in_line_that_have_not_come_yet(redis: Redis) -> None:
    """Results queued for the next three seconds have not reserved a moment yet: a reply that
    yields still waits for them."""
    limiter = TelegramLimiter(redis, SendLimits(total_per_second=20))
    for _ in range(60):
        await limiter.place_in_line()
    with pytest.raises(RetryLater) as later:
        await limiter.acquire(chats(1)[0], max_wait=1.0, yielding=True)
    assert later.value.delay > 3.0 - YIELD_HORIZON - 2 * EARLY_RETURN


async def test_results_waiting_go_before_replies_that_yield(redis: Redis) -> None:
    """Replies asked for first, results a moment later: once the results' reservations reach
    past the yield horizon, every reply waits until the results are out."""
    limiter = TelegramLimiter(redis, SendLimits(total_per_second=20))
    order: list[str] = []

    async def send(chat: int, what: str) -> None:
        await limiter.acquire(chat, max_wait=10, yielding=what == "reply")
        order.append(what)

    replies = [send(chat, "reply") for chat in chats(15)]
    results = [send(chat, "result") for chat in chats(30)]
    await asyncio.gather(*replies, asyncio.sleep(0.01), *results)
    before_last_result = order[: len(order) - order[::-1].index("result")]
    assert len(order) == 45
    assert before_last_result.count("reply") <= YIELD_HORIZON * 20 + 1


async def test_yielding_senders_behind_results_all_go_and_ask_seldom(redis: Redis) -> None:
    """Forty replies at 20/s with results reserved for the first second: every reply goes,
    and waiting costs Redis a call per turn of the lane, not per waiting reply per moment.
    (Their pace is the benchmark's to measure, not this test's.)"""
    limiter = TelegramLimiter(redis, SendLimits(total_per_second=20))
    for chat in chats(20):
        with contextlib.suppress(RetryLater):
            await limiter.acquire(chat, max_wait=0)
    calls = 0
    ask = limiter._try

    async def counted(*args: Any, **kwargs: Any) -> float:
        nonlocal calls
        calls += 1
        return await ask(*args, **kwargs)

    limiter._try = counted  # type: ignore[method-assign]
    sent: list[int] = []

    async def reply(chat: int) -> None:
        await limiter.acquire(chat, max_wait=30, yielding=True)
        sent.append(chat)

    await asyncio.gather(*(reply(chat) for chat in chats(40)))
    assert len(sent) == 40
    assert calls <= 40 + 3 * 20
