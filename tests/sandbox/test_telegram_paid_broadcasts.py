"""Paid broadcasts at the Telegram stand-in (Bot API 7.11): sends with allow_paid_broadcast go
past the bot's 30/s, each billed 0.1 Star from the bot's balance; one the balance cannot pay
for is refused; without the parameter the same sends meet 429."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.types import InputMediaPhoto

from sandbox.telegram.testing import StandIn, telegram_stand_in

TOKEN = "123456:AAH-test_token_abcdef"
CHATS = range(7_000_000, 7_000_060)  # twice what the bot's 30/s bucket holds


@pytest.fixture
async def limited_telegram() -> AsyncIterator[StandIn]:
    async with telegram_stand_in(enforce_limits=True, fetch_urls=False) as stand_in:
        yield stand_in


@pytest.fixture
async def bot(limited_telegram: StandIn) -> AsyncIterator[Bot]:
    bot = Bot(TOKEN, session=AiohttpSession(api=limited_telegram.api))
    yield bot
    await bot.session.close()


async def set_balance(telegram: StandIn, stars: float) -> None:
    (await telegram.control.post("/stars", json={"balance": stars})).raise_for_status()


async def stars(telegram: StandIn) -> dict[str, float]:
    return (await telegram.control.get("/stars")).json()  # type: ignore[no-any-return]


async def send_all(bot: Bot, *, paid: bool) -> list[BaseException | None]:
    async def send(chat: int) -> None:
        await bot.send_message(chat, "your picture", allow_paid_broadcast=paid or None)

    answers = await asyncio.gather(*(send(chat) for chat in CHATS), return_exceptions=True)
    return list(answers)


async def test_paid_sends_go_past_the_free_limit_and_are_billed(
    bot: Bot, limited_telegram: StandIn
) -> None:
    await set_balance(limited_telegram, 10)
    assert await send_all(bot, paid=True) == [None] * len(CHATS)
    seen = await stars(limited_telegram)
    assert (seen["paid_sends"], seen["balance"]) == (len(CHATS), 4.0)


async def test_free_sends_past_the_limit_are_refused_with_429(bot: Bot) -> None:
    answers = await send_all(bot, paid=False)
    assert any(isinstance(answer, TelegramRetryAfter) for answer in answers)


async def test_a_paid_send_the_balance_cannot_pay_for_is_refused(
    bot: Bot, limited_telegram: StandIn
) -> None:
    await set_balance(limited_telegram, 0.5)
    answers = await send_all(bot, paid=True)
    refused = [answer for answer in answers if isinstance(answer, TelegramBadRequest)]
    assert refused and all("BALANCE_TOO_LOW" in answer.message for answer in refused)
    assert not any(isinstance(answer, TelegramRetryAfter) for answer in answers)
    seen = await stars(limited_telegram)
    assert seen["paid_sends"] == 5 and seen["balance"] == 0


async def test_a_paid_album_is_billed_for_each_of_its_messages(
    bot: Bot, limited_telegram: StandIn
) -> None:
    await set_balance(limited_telegram, 0.5)
    photos = [InputMediaPhoto(media="https://example.com/a.jpg") for _ in range(4)]
    await bot.send_media_group(CHATS[0], photos, allow_paid_broadcast=True)
    with pytest.raises(TelegramBadRequest, match="BALANCE_TOO_LOW"):  # 0.4 Star, 0.1 left
        await bot.send_media_group(CHATS[1], photos[:2], allow_paid_broadcast=True)
    seen = await stars(limited_telegram)
    assert (seen["paid_sends"], seen["balance"]) == (4, 0.1)


async def test_the_balance_is_set_by_a_number_only(limited_telegram: StandIn) -> None:
    answer = await limited_telegram.control.post("/stars", json={"balance": "lots"})
    assert answer.status_code == 400
