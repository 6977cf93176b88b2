"""The Bot API session middleware against a real Redis and a faked transport: a handler run
again gets its earlier answers back instead of sending twice, a 429 pauses every sender,
the outbox's Bots (reply, result, notice, broadcast, progress) do what their policies
promise, and results go first."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.methods import TelegramMethod
from aiogram.types import LabeledPrice, Message
from redis.asyncio import Redis

from core.infra.retry import RetryLater
from core.telegram.inbox import sent_key
from core.telegram.limits import PAUSE_KEY, SendLimits, TelegramLimiter
from core.telegram.outbox import (
    SENT_TTL,
    Outbox,
    SendPacer,
    SendSkipped,
    status_bot,
    waited,
)
from tests.fake_bot_api import FakeSession


def retry_after(seconds: float) -> Callable[[TelegramMethod[Any]], Exception]:
    # Telegram's retry_after is whole seconds; a fraction keeps the waiting tests short.
    return lambda method: TelegramRetryAfter(method, "Too Many Requests", seconds)  # type: ignore[arg-type]


@pytest.fixture
def limiter(redis: Redis) -> TelegramLimiter:
    # A private chat's second message may go 20 ms after its first, not 1 s: the tests that
    # send twice to one chat do not wait out Telegram's per-chat limit.
    return TelegramLimiter(redis, SendLimits(private_per_second=50, group_per_minute=3000))


@pytest.fixture
async def session() -> FakeSession:
    return FakeSession()


@pytest.fixture
async def outbox(
    session: FakeSession, redis: Redis, limiter: TelegramLimiter
) -> AsyncIterator[Outbox]:
    bot = Bot("42:TEST", session=session)
    bot.session.middleware(SendPacer(redis, limiter))
    yield Outbox(bot)


CHAT = 5001
OTHER_CHAT = 5002


# --- replaying a handler's answers ----------------------------------------------------------


async def test_a_handler_run_twice_for_one_update_sends_once(
    outbox: Outbox, session: FakeSession, redis: Redis
) -> None:
    async def handler(bot: Bot) -> Message:
        return await bot.send_message(CHAT, "your picture is on its way")

    first = await handler(outbox.reply(700, first_run=True))
    bot = outbox.reply(700, first_run=False)
    second = await handler(bot)

    assert session.names() == ["sendMessage"], "the second run must not send again"
    assert isinstance(second, Message)
    assert second.message_id == first.message_id
    assert second.chat.id == CHAT
    assert second.text == "your picture is on its way"
    assert second.bot is bot, "a replayed Message can still be used to reply or edit"
    assert 0 < await redis.ttl(sent_key(700)) <= SENT_TTL


async def test_a_run_cut_short_replays_what_it_sent_and_sends_the_rest(
    outbox: Outbox, session: FakeSession
) -> None:
    class Crash(Exception):
        pass

    async def handler(bot: Bot, crash: bool) -> tuple[Message, Message]:
        status = await bot.send_message(CHAT, "queued")
        if crash:
            raise Crash
        edited = await bot.edit_message_text("started", chat_id=CHAT, message_id=status.message_id)
        return status, edited  # type: ignore[return-value]

    with pytest.raises(Crash):
        await handler(outbox.reply(701, first_run=True), crash=True)
    status, edited = await handler(outbox.reply(701, first_run=False), crash=False)
    again = await handler(outbox.reply(701, first_run=False), crash=False)

    assert session.names() == ["sendMessage", "editMessageText"]
    assert session.requests[1].message_id == status.message_id  # type: ignore[attr-defined]
    assert again[0].message_id == status.message_id
    assert again[1].message_id == edited.message_id


async def test_another_update_or_no_update_is_not_replayed(
    outbox: Outbox, session: FakeSession
) -> None:
    first = await outbox.reply(702, first_run=False).send_message(CHAT, "hello")
    other = await outbox.reply(703, first_run=False).send_message(CHAT, "hello")
    plain = await outbox.notice.send_message(CHAT, "hello")
    again = await outbox.notice.send_message(CHAT, "hello")

    assert session.names() == ["sendMessage"] * 4
    assert len({first.message_id, other.message_id, plain.message_id, again.message_id}) == 4


async def test_reads_are_asked_every_time_and_do_not_shift_the_replayed_answers(
    outbox: Outbox, session: FakeSession
) -> None:
    async def handler(bot: Bot) -> Message:
        await bot.get_me()
        return await bot.send_message(CHAT, "hi")

    first = await handler(outbox.reply(704, first_run=True))
    second = await handler(outbox.reply(704, first_run=False))
    assert session.names() == ["getMe", "sendMessage", "getMe"]
    assert second.message_id == first.message_id


async def test_a_failed_send_is_not_stored_and_is_made_again(
    outbox: Outbox, session: FakeSession
) -> None:
    session.script.append((400, {"ok": False, "error_code": 400, "description": "Bad Request"}))
    with pytest.raises(TelegramBadRequest):
        await outbox.reply(705, first_run=True).send_message(CHAT, "hi")
    sent = await outbox.reply(705, first_run=False).send_message(CHAT, "hi")
    assert session.names() == ["sendMessage", "sendMessage"]
    assert isinstance(sent, Message)


# --- 429 and the send policies -------------------------------------------------------------


async def test_a_429_pauses_every_sender_of_the_bot(
    outbox: Outbox, session: FakeSession, redis: Redis, limiter: TelegramLimiter
) -> None:
    session.script.append(retry_after(30))
    with pytest.raises(TelegramRetryAfter):
        await outbox.result.send_message(CHAT, "hi")

    paused_until = float(await redis.get(PAUSE_KEY))
    assert paused_until > time.time() + 25
    assert not await limiter.try_acquire(OTHER_CHAT), "another chat must wait too"
    with pytest.raises(RetryLater):
        await outbox.notice.send_message(OTHER_CHAT, "hi")
    with pytest.raises(SendSkipped):
        await outbox.progress.send_message(-OTHER_CHAT, "a group waits too")
    assert session.names() == ["sendMessage"], "nothing else reached Telegram"


async def test_a_handlers_send_waits_out_a_429_and_goes(
    outbox: Outbox, session: FakeSession, redis: Redis
) -> None:
    session.script.append(retry_after(0.2))
    sent = await outbox.reply(706, first_run=True).send_message(CHAT, "after the pause")
    assert session.names() == ["sendMessage", "sendMessage"]
    assert isinstance(sent, Message) and sent.text == "after the pause"
    assert await redis.exists(PAUSE_KEY), "the pause was shared through Redis"
    replayed = await outbox.reply(706, first_run=False).send_message(CHAT, "after the pause")
    assert replayed.message_id == sent.message_id
    assert len(session.requests) == 2


async def test_a_results_send_hands_a_429_back(outbox: Outbox, session: FakeSession) -> None:
    session.script.append(retry_after(0.2))
    with pytest.raises(TelegramRetryAfter) as raised:
        await outbox.result.send_photo(CHAT, "photo-id")
    assert raised.value.retry_after == 0.2
    assert session.names() == ["sendPhoto"], "not retried inside the task"


async def test_a_far_moment_defers_the_send(
    outbox: Outbox, session: FakeSession, redis: Redis
) -> None:
    group = -CHAT
    assert await TelegramLimiter(redis).try_acquire(group)  # the group's next moment: 3 s away
    with pytest.raises(RetryLater) as later:
        await outbox.result.send_photo(group, "photo-id")
    assert later.value.delay > 0
    assert session.requests == []


async def test_a_handlers_reply_and_a_broadcast_let_a_waiting_result_go_first(
    outbox: Outbox, session: FakeSession, redis: Redis, limiter: TelegramLimiter
) -> None:
    for chat in range(9000, 9030):  # results' moments held for the next second
        with contextlib.suppress(RetryLater):
            await limiter.acquire(chat, max_wait=0)

    async def reply() -> None:
        await outbox.reply(708, first_run=True).send_message(CHAT, "queued")

    async def broadcast() -> None:
        await outbox.broadcast.send_message(OTHER_CHAT, "news")

    async def result() -> None:
        await asyncio.sleep(0.05)
        await outbox.result.send_photo(CHAT + 100, "photo-id")

    await asyncio.gather(reply(), broadcast(), result())
    assert session.names()[0] == "sendPhoto"
    assert sorted(session.names()[1:]) == ["sendMessage", "sendMessage"]


async def test_a_status_message_keeps_its_place_before_a_result_that_comes_later(
    outbox: Outbox, session: FakeSession, limiter: TelegramLimiter
) -> None:
    """A handler's other calls let results go first; its job's status message, sent only
    when its moment is near (bot/launch.py), does not wait out the peak behind them."""
    for chat in range(9000, 9030):  # results' moments held for the next second
        with contextlib.suppress(RetryLater):
            await limiter.acquire(chat, max_wait=0)

    async def status() -> None:
        await status_bot(outbox.reply(709, first_run=True)).send_message(CHAT, "⏳ queued")

    async def result() -> None:
        await asyncio.sleep(0.05)
        await outbox.result.send_photo(CHAT + 100, "photo-id")

    await asyncio.gather(status(), result())
    assert session.names() == ["sendMessage", "sendPhoto"]


async def test_a_status_message_is_replayed_within_its_handlers_run(
    outbox: Outbox, session: FakeSession
) -> None:
    for first_run in (True, False):
        bot = outbox.reply(710, first_run=first_run, received_at=time.time() - 30)
        await bot.send_message(CHAT, "a refusal")
        await status_bot(bot).send_message(CHAT, "⏳ queued")
        assert 30 <= waited(bot) < 60
    assert session.names() == ["sendMessage", "sendMessage"]
    assert waited(outbox.notice) == 0


async def test_a_progress_edit_is_skipped_when_the_chat_has_no_free_moment(
    outbox: Outbox, session: FakeSession, redis: Redis
) -> None:
    # 1 message a second to a private chat; the bot-wide spacing it leaves is negligible, so
    # only CHAT is busy.
    strict = TelegramLimiter(redis, SendLimits(total_per_second=10**6))
    assert await strict.try_acquire(CHAT)
    with pytest.raises(SendSkipped):
        await outbox.progress.edit_message_text("50 %", chat_id=CHAT, message_id=1)
    assert session.requests == []

    edited = await outbox.progress.edit_message_text("50 %", chat_id=OTHER_CHAT, message_id=1)
    assert isinstance(edited, Message)
    assert session.names() == ["editMessageText"]


async def test_a_refused_button_answer_does_not_fail_the_handler(
    outbox: Outbox, session: FakeSession
) -> None:
    bot = outbox.reply(709, first_run=True)
    too_old = {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: query is too old and response timeout expired",
    }
    session.script.append((400, too_old))
    assert await bot.answer_callback_query("q1", "done") is True

    session.script.append((400, {**too_old, "description": "Bad Request: chat not found"}))
    with pytest.raises(TelegramBadRequest):
        await bot.send_message(CHAT, "a refused message still fails")
    assert session.names() == ["answerCallbackQuery", "sendMessage"]


async def test_calls_that_put_nothing_in_a_chat_are_not_paced(
    outbox: Outbox, session: FakeSession, redis: Redis
) -> None:
    await TelegramLimiter(redis).pause(30)  # every send waits 30 s
    assert await outbox.notice.answer_callback_query("q2") is True
    assert await outbox.notice.delete_message(CHAT, 17) is True
    with pytest.raises(RetryLater):
        await outbox.notice.send_message(CHAT, "this one waits")
    assert session.names() == ["answerCallbackQuery", "deleteMessage"]


async def test_a_pre_checkout_answer_is_not_paced_and_an_invoice_is(
    outbox: Outbox, session: FakeSession, redis: Redis
) -> None:
    """Telegram gives a pre-checkout query 10 s: its answer never waits behind messages."""
    await TelegramLimiter(redis).pause(30)
    assert await outbox.notice.answer_pre_checkout_query("q3", ok=True) is True
    with pytest.raises(RetryLater):
        await outbox.notice.send_invoice(
            CHAT,
            title="50 credits",
            description="50 credits",
            payload="pack:small:50",
            currency="XTR",
            prices=[LabeledPrice(label="50 credits", amount=50)],
        )
    assert session.names() == ["answerPreCheckoutQuery"]


async def test_an_unpaced_call_answered_429_is_not_repeated_before_the_pause_ends(
    outbox: Outbox, session: FakeSession
) -> None:
    """A button's answer (or a send to a channel by @name) takes no moment from the limiter;
    after a 429 it must still wait out Telegram's retry_after, not ask again at once."""
    session.script.extend(retry_after(30) for _ in range(50))
    with contextlib.suppress(TimeoutError):
        bot = outbox.reply(707, first_run=True)
        await asyncio.wait_for(bot.answer_callback_query("q3"), 0.3)
    assert len(session.requests) == 1, f"asked {len(session.requests)} times in a 30 s pause"


# --- the outbox's Bots --------------------------------------------------------------------


async def test_a_call_through_the_paced_session_must_name_its_policy(
    outbox: Outbox, session: FakeSession
) -> None:
    """A Bot made outside the outbox, on its session, has no policy to send under."""
    stray = Bot("42:TEST", session=session)
    with pytest.raises(TypeError):
        await stray.send_message(CHAT, "from nowhere")
    assert session.requests == []


async def test_the_bots_account_is_asked_once_for_every_handlers_bot(
    outbox: Outbox, session: FakeSession
) -> None:
    """Group messages need the bot's @name; a handler's Bot lives for one update."""
    names = [(await outbox.reply(n, first_run=True).me()).username for n in (710, 711)]
    assert names[0] == names[1]
    assert session.names() == ["getMe"]
