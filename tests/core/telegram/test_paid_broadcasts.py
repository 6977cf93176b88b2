"""Paid broadcasts against a real Redis: while the line of results is long, results take
moments in the paid lane (past the free rate, each chat's limit kept) and their calls carry
allow_paid_broadcast; the day's budget stops it; replies and progress edits are never paid."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from aiogram import Bot
from aiogram.types import InputMediaPhoto
from redis.asyncio import Redis

from core.infra.config import Config
from core.infra.retry import RetryLater
from core.resources import send_limits
from core.telegram.limits import SendLimits, TelegramLimiter
from core.telegram.outbox import Outbox, SendPacer
from tests.fake_bot_api import FakeSession

FREE_PER_SECOND = 20
PAID_AFTER = 0.5  # seconds of line: 10 free moments at 20/s
#: The line the tests make: long enough that a loaded machine does not see it shrink below
#: PAID_AFTER while a test runs.
LINE = 2.5
BUDGET = 30  # paid sends a day


@pytest.fixture
def limiter(redis: Redis) -> TelegramLimiter:
    limits = SendLimits(
        total_per_second=FREE_PER_SECOND, paid_after=PAID_AFTER, paid_per_day=BUDGET
    )
    return TelegramLimiter(redis, limits)


def chats(n: int) -> list[int]:
    base = uuid.uuid4().int % 10**9
    return [base + i for i in range(n)]


async def hold_free_moments(limiter: TelegramLimiter, seconds: float) -> None:
    """Results' free moments reserved for the next `seconds`: a line that long."""
    for chat in chats(round(seconds * FREE_PER_SECOND)):
        with contextlib.suppress(RetryLater):
            await limiter.acquire(chat, max_wait=0)


async def test_a_long_line_sends_results_paid_and_a_short_one_free(
    limiter: TelegramLimiter,
) -> None:
    [first] = chats(1)
    assert not (await limiter.acquire(first, max_wait=1, paid=True)).paid, "no line yet"

    await hold_free_moments(limiter, LINE)
    moments = await asyncio.gather(
        *(limiter.acquire(chat, max_wait=0.1, paid=True) for chat in chats(25))
    )
    # Twenty-five results go within 0.1 s, past the free 20/s whose line is 2.5 s long.
    assert all(moment.paid for moment in moments)
    assert await limiter.paid_today() == 25


async def test_only_sends_that_may_be_paid_go_paid(limiter: TelegramLimiter) -> None:
    await hold_free_moments(limiter, LINE)
    with pytest.raises(RetryLater):  # a reply yields to the line, paid or not
        await limiter.acquire(chats(1)[0], max_wait=0.1, yielding=True)
    with pytest.raises(RetryLater):
        await limiter.acquire(chats(1)[0], max_wait=0.1)
    assert not await limiter.try_acquire(chats(1)[0])
    assert await limiter.paid_today() == 0


async def test_a_paid_send_keeps_the_chats_own_limit(redis: Redis) -> None:
    limiter = TelegramLimiter(redis, SendLimits(paid_after=0.0, paid_per_day=BUDGET))
    [chat] = chats(1)
    await hold_free_moments(limiter, 0.5)
    assert (await limiter.acquire(chat, max_wait=0.5, paid=True)).paid
    with pytest.raises(RetryLater):  # one message a second to a private chat, paid or not
        await limiter.acquire(chat, max_wait=0.5, paid=True)


async def test_the_days_budget_stops_paid_sends(limiter: TelegramLimiter) -> None:
    await hold_free_moments(limiter, LINE)
    moments = await asyncio.gather(
        *(limiter.acquire(chat, max_wait=5, paid=True) for chat in chats(BUDGET + 10))
    )
    assert sum(moment.paid for moment in moments) == BUDGET
    over = [moment for moment in moments if not moment.paid]
    # Free moments: the first while the line is still long, so over the budget.
    assert len(over) == 10 and over[0].over_budget
    assert await limiter.paid_today() == BUDGET


async def test_an_album_pays_for_each_of_its_messages(limiter: TelegramLimiter) -> None:
    await hold_free_moments(limiter, LINE)
    [album, single, one_too_many] = chats(3)
    assert (await limiter.acquire(album, max_wait=0.1, paid=True, messages=BUDGET - 2)).paid
    assert (await limiter.acquire(single, max_wait=0.1, paid=True)).paid
    # Two more messages would pass the budget by one: the album takes a free moment instead.
    assert (await limiter.acquire(one_too_many, max_wait=5, paid=True, messages=2)).over_budget
    assert await limiter.paid_today() == BUDGET - 1


async def test_results_placed_behind_a_long_line_are_not_kept_back(
    limiter: TelegramLimiter,
) -> None:
    delays = [await limiter.place_in_line() for _ in range(60)]
    # The free line grows to PAID_AFTER (10 results at 20/s), then results go to the paid
    # lane at once, and the free line keeps no more turns for them.
    assert delays[-30:] == [0.0] * 30
    assert max(delays) <= PAID_AFTER
    moments = await asyncio.gather(
        *(limiter.acquire(chat, max_wait=0.1, paid=True) for chat in chats(30))
    )
    assert all(moment.paid for moment in moments)


async def test_with_the_budget_spent_results_are_placed_in_the_free_line(
    redis: Redis,
) -> None:
    limiter = TelegramLimiter(redis, SendLimits(paid_after=PAID_AFTER, paid_per_day=0))
    delays = [await limiter.place_in_line() for _ in range(60)]
    assert delays == sorted(delays) and delays[-1] > 0.5


# --- the pacer sets allow_paid_broadcast --------------------------------------------------


@pytest.fixture
async def outbox(redis: Redis, limiter: TelegramLimiter) -> tuple[Outbox, FakeSession]:
    session = FakeSession()
    bot = Bot("42:TEST", session=session)
    bot.session.middleware(SendPacer(redis, limiter))
    return Outbox(bot), session


def paid_flags(session: FakeSession) -> list[bool]:
    return [bool(getattr(call, "allow_paid_broadcast", None)) for call in session.requests]


async def test_results_and_broadcasts_behind_a_long_line_go_with_allow_paid_broadcast(
    outbox: tuple[Outbox, FakeSession], limiter: TelegramLimiter
) -> None:
    bots, session = outbox
    [before, result, broadcast, notice] = chats(4)
    await bots.result.send_photo(before, "photo-id")
    await hold_free_moments(limiter, LINE)
    await bots.result.send_photo(result, "photo-id")
    await bots.broadcast.send_message(broadcast, "news")
    with pytest.raises(RetryLater):  # a notice is never paid: it waits for a free moment
        await bots.notice.send_message(notice, "failed, refunded")
    assert session.names() == ["sendPhoto", "sendPhoto", "sendMessage"]
    assert paid_flags(session) == [False, True, True]


async def test_a_paid_album_counts_its_photos_against_the_budget(
    outbox: tuple[Outbox, FakeSession], limiter: TelegramLimiter
) -> None:
    bots, session = outbox
    await hold_free_moments(limiter, LINE)
    [chat] = chats(1)
    photos = [InputMediaPhoto(media=f"photo-{i}") for i in range(4)]
    album = [
        {"message_id": i, "date": 0, "chat": {"id": chat, "type": "private"}} for i in range(4)
    ]
    session.script.append((200, {"ok": True, "result": album}))
    await bots.result.send_media_group(chat, photos)
    assert paid_flags(session) == [True]
    assert await limiter.paid_today() == 4


async def test_a_paid_send_the_balance_cannot_pay_for_ends_paid_sends_for_the_day(
    outbox: tuple[Outbox, FakeSession], limiter: TelegramLimiter
) -> None:
    bots, session = outbox
    await hold_free_moments(limiter, LINE)
    session.script.append(
        (400, {"ok": False, "error_code": 400, "description": "Bad Request: BALANCE_TOO_LOW"})
    )
    with pytest.raises(RetryLater):  # tried again free: its task comes back for the moment
        await bots.result.send_photo(chats(1)[0], "photo-id")
    assert paid_flags(session) == [True]
    assert await limiter.paid_today() == BUDGET
    assert not (await limiter.acquire(chats(1)[0], max_wait=5, paid=True)).paid


# --- the operator's settings --------------------------------------------------------------


def test_paid_broadcasts_are_off_by_default_and_the_budget_is_counted_in_sends() -> None:
    assert send_limits(Config()).paid_after is None
    limits = send_limits(Config(PAID_BROADCAST_AFTER_SECONDS=10, PAID_BROADCAST_DAILY_STARS=25))
    assert (limits.paid_after, limits.paid_per_day) == (10, 250)
