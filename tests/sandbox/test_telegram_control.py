"""The stand-in's control API: simulated people push real updates to the bot's webhook, tests
inject faults and flood limits, and read back what the bot did."""

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LabeledPrice,
    ReactionTypeEmoji,
    Update,
)
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.asgi import serve
from sandbox.telegram.testing import StandIn, telegram_stand_in

TOKEN = "987654:kadr-control-tests"
SECRET = "webhook_secret-1"
USER = 555


@dataclass
class Receiver:
    """The bot's webhook endpoint: keeps what Telegram pushed and answers as told."""

    url: str = ""
    received: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    status: int = 200
    reply: Callable[[dict[str, Any]], dict[str, Any] | None] = lambda update: None

    async def endpoint(self, request: Request) -> Response:
        body = await request.json()
        self.received.append((dict(request.headers), body))
        answer = self.reply(body)
        return JSONResponse(answer) if answer else Response(status_code=self.status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    async with serve(
        Starlette(routes=[Route("/hook", receiver.endpoint, methods=["POST"])])
    ) as url:
        receiver.url = f"{url}/hook"
        yield receiver


@pytest.fixture
async def telegram() -> AsyncIterator[StandIn]:
    async with telegram_stand_in() as stand_in:
        yield stand_in


@pytest.fixture
async def bot(telegram: StandIn, receiver: Receiver) -> AsyncIterator[Bot]:
    bot = Bot(TOKEN, session=AiohttpSession(api=telegram.api))
    await bot.set_webhook(receiver.url, secret_token=SECRET)
    yield bot
    await bot.session.close()


async def act(telegram: StandIn, action: str, **body: Any) -> dict[str, Any]:
    response = await telegram.control.post(f"/{action}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def keyboard_message(bot: Bot) -> int:
    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Retry", callback_data="retry:7")]]
    )
    return (await bot.send_message(USER, "Failed, retry?", reply_markup=markup)).message_id


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "orange").save(out, "JPEG")
    return out.getvalue()


async def test_send_message_posts_a_valid_update_with_the_secret(
    bot: Bot, telegram: StandIn, receiver: Receiver
) -> None:
    result = await act(
        telegram, "send_message", user_id=USER, text="/start promo", language_code="ru"
    )

    [(headers, body)] = receiver.received
    assert headers["x-telegram-bot-api-secret-token"] == SECRET
    assert headers["content-type"] == "application/json"
    assert body == result["update"]
    update = Update.model_validate(body, context={"bot": bot})
    message = update.message
    assert message is not None and message.from_user is not None
    assert message.text == "/start promo"
    assert [(e.type, e.offset, e.length) for e in message.entities or []] == [("bot_command", 0, 6)]
    assert message.from_user.language_code == "ru"
    assert message.chat.type == "private" and message.chat.id == USER
    assert [delivery["status"] for delivery in result["deliveries"]] == [200]


async def test_update_ids_rise_and_repeat_redelivers_the_same_update(
    bot: Bot, telegram: StandIn, receiver: Receiver
) -> None:
    first = await act(telegram, "send_message", user_id=USER, text="one")
    second = await act(telegram, "send_message", user_id=USER, text="two", repeat=3)

    assert second["update"]["update_id"] == first["update"]["update_id"] + 1
    assert len(second["deliveries"]) == 3
    assert [body["update_id"] for _, body in receiver.received[1:]] == [
        second["update"]["update_id"]
    ] * 3


async def test_control_calls_need_a_webhook(telegram: StandIn) -> None:
    response = await telegram.control.post("/send_message", json={"user_id": USER, "text": "hi"})

    assert response.status_code == 409
    assert "setWebhook" in response.json()["error"]


async def test_press_button_sends_a_callback_query_answered_once(
    bot: Bot, telegram: StandIn, receiver: Receiver
) -> None:
    message_id = await keyboard_message(bot)

    result = await act(
        telegram, "press_button", user_id=USER, message_id=message_id, callback_data="retry:7"
    )

    query = Update.model_validate(result["update"], context={"bot": bot}).callback_query
    assert query is not None and query.message is not None
    assert query.data == "retry:7" and query.message.message_id == message_id
    assert await bot.answer_callback_query(query.id, text="On it") is True
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query.id)
    unknown = await telegram.control.post(
        "/press_button", json={"user_id": USER, "message_id": 999, "callback_data": "x"}
    )
    wrong_data = await telegram.control.post(
        "/press_button", json={"user_id": USER, "message_id": message_id, "callback_data": "x"}
    )
    assert (unknown.status_code, wrong_data.status_code) == (404, 400)


async def test_allowed_updates_filters_what_is_pushed(
    bot: Bot, telegram: StandIn, receiver: Receiver
) -> None:
    await bot.set_webhook(receiver.url, secret_token=SECRET, allowed_updates=["message"])
    message_id = await keyboard_message(bot)

    result = await act(
        telegram, "press_button", user_id=USER, message_id=message_id, callback_data="retry:7"
    )

    assert result["deliveries"] == [] and "callback_query" in result["skipped"]
    assert receiver.received == []


async def test_user_photo_has_two_downloadable_sizes(
    bot: Bot, telegram: StandIn, receiver: Receiver
) -> None:
    response = await telegram.control.post(
        "/send_photo",
        data={"user_id": str(USER), "caption": "make it pop"},
        files={"photo": ("me.jpg", jpeg(1000, 800), "image/jpeg")},
    )
    message = Update.model_validate(response.json()["update"], context={"bot": bot}).message

    assert message is not None and message.caption == "make it pop"
    small, full = message.photo or []
    assert (full.width, full.height) == (1000, 800)
    assert (small.width, small.height) == (320, 256)
    for size in (small, full):
        file = await bot.get_file(size.file_id)
        downloaded = await bot.download(file)
        assert downloaded is not None
        assert Image.open(downloaded).size == (size.width, size.height)


async def test_user_photo_as_document_and_plain_documents(bot: Bot, telegram: StandIn) -> None:
    as_document = await telegram.control.post(
        "/send_photo",
        data={"user_id": str(USER), "as_document": "1"},
        files={"photo": ("raw.png", b"\x89PNG...", "image/png")},
    )
    document = await telegram.control.post(
        "/send_document",
        data={"user_id": str(USER)},
        files={"document": ("notes.txt", b"hello", "text/plain")},
    )

    photo_doc = as_document.json()["update"]["message"]["document"]
    text_doc = document.json()["update"]["message"]["document"]
    assert (photo_doc["file_name"], photo_doc["mime_type"]) == ("raw.png", "image/png")
    assert (text_doc["file_name"], text_doc["file_size"]) == ("notes.txt", 5)
    downloaded = await bot.download(text_doc["file_id"])
    assert downloaded is not None and downloaded.read() == b"hello"


async def test_chat_view_shows_edits_and_hides_deleted(bot: Bot, telegram: StandIn) -> None:
    await act(telegram, "send_message", user_id=USER, text="a red fox")
    progress = await bot.send_message(USER, "Queued")
    notice = await bot.send_message(USER, "Generating…")
    await bot.edit_message_text("Done", chat_id=USER, message_id=progress.message_id)
    await bot.delete_message(USER, notice.message_id)
    await bot.send_photo(USER, BufferedInputFile(jpeg(40, 30), "fox.jpg"), caption="Your fox")

    view = (await telegram.control.get(f"/chats/{USER}/messages")).json()

    assert [(m["from_bot"], m.get("text") or m.get("caption"), m["edited"]) for m in view] == [
        (False, "a red fox", False),
        (True, "Done", True),
        (True, "Your fox", False),
    ]
    picture = await telegram.control.get(view[2]["photo"]["url"])
    assert Image.open(io.BytesIO(picture.content)).size == (40, 30)


async def test_reset_forgets_people_but_keeps_webhook_and_files(
    bot: Bot, telegram: StandIn, receiver: Receiver
) -> None:
    sent = await bot.send_photo(USER, BufferedInputFile(jpeg(40, 30), "keep.jpg"))
    (await telegram.control.post(f"/users/{USER}/block")).raise_for_status()

    (await telegram.control.post("/reset")).raise_for_status()

    assert await telegram.requests() == []
    assert (await telegram.control.get(f"/chats/{USER}/messages")).json() == []
    assert (await bot.get_webhook_info()).url == receiver.url
    assert (await bot.get_file((sent.photo or [])[-1].file_id)).file_size
    await bot.send_message(USER, "not blocked any more")


async def test_failed_delivery_shows_in_webhook_info(
    bot: Bot, telegram: StandIn, receiver: Receiver
) -> None:
    receiver.status = 500

    result = await act(telegram, "send_message", user_id=USER, text="hi")

    assert result["deliveries"][0]["status"] == 500
    info = await bot.get_webhook_info()
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
    assert info.last_error_date is not None


async def test_method_in_the_webhook_answer_is_executed(
    bot: Bot, telegram: StandIn, receiver: Receiver
) -> None:
    receiver.reply = lambda update: {
        "method": "sendMessage",
        "chat_id": update["message"]["chat"]["id"],
        "text": "pong",
    }

    await act(telegram, "send_message", user_id=USER, text="ping")

    [call] = await telegram.requests(method="sendMessage")
    assert call["token"] == TOKEN and call["params"] == {"chat_id": USER, "text": "pong"}


async def test_paying_an_invoice_in_stars(bot: Bot, telegram: StandIn, receiver: Receiver) -> None:
    invoice = await bot.send_invoice(
        USER,
        title="100 credits",
        description="Credits for pictures",
        payload="order-42",
        currency="XTR",
        prices=[LabeledPrice(label="100 credits", amount=50)],
    )
    receiver.reply = lambda update: (
        {
            "method": "answerPreCheckoutQuery",
            "pre_checkout_query_id": update["pre_checkout_query"]["id"],
            "ok": True,
        }
        if "pre_checkout_query" in update
        else None
    )

    result = await act(telegram, "pay", user_id=USER, message_id=invoice.message_id)

    assert result["answer"] == {"ok": True, "error_message": None}
    paid = Update.model_validate(result["successful_payment"]["update"], context={"bot": bot})
    payment = paid.message.successful_payment if paid.message else None
    assert payment is not None
    assert (payment.currency, payment.total_amount, payment.invoice_payload) == (
        "XTR",
        50,
        "order-42",
    )
    charge_id = payment.telegram_payment_charge_id
    assert await bot.refund_star_payment(USER, charge_id) is True
    with pytest.raises(TelegramBadRequest, match="CHARGE_ALREADY_REFUNDED"):
        await bot.refund_star_payment(USER, charge_id)


async def test_raw_updates_are_pushed_as_given(
    bot: Bot, telegram: StandIn, receiver: Receiver
) -> None:
    reaction = {"message_reaction": {"chat": {"id": USER, "type": "private"}}}
    edited = {"edited_message": {"message_id": 1, "text": "x"}, "brand_new_field": {}}

    filtered = (await telegram.control.post("/updates", json=reaction)).json()
    odd = (await telegram.control.post("/updates", json=edited)).json()
    garbage = (await telegram.control.post("/updates?repeat=2", json=[1, 2])).json()

    assert filtered["deliveries"] == []
    assert odd["update"]["update_id"] and odd["update"]["brand_new_field"] == {}
    assert len(garbage["deliveries"]) == 2
    assert [body for _, body in receiver.received] == [odd["update"], [1, 2], [1, 2]]


async def test_faults_can_delay_pick_a_chat_or_hit_any_message_method(
    bot: Bot, telegram: StandIn
) -> None:
    faults = [
        {"method": "getMe", "status": None, "delay": 0.2},
        {"chat_id": 1, "status": 500, "description": "Internal Server Error: restart"},
        {"method": None, "status": 400, "description": "Bad Request: chat not found"},
    ]
    for fault in faults:
        (await telegram.control.post("/faults", json=fault)).raise_for_status()

    await bot.get_me()
    assert await bot.send_chat_action(USER, "typing") is True  # not a message
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(USER, "a")
    await bot.send_message(USER, "b")
    (await telegram.control.delete("/faults")).raise_for_status()
    await bot.send_message(1, "no fault left")

    calls = await telegram.requests(method=["getMe", "sendMessage"])
    assert calls[0]["method"] == "getMe" and calls[0]["status"] == 200
    assert [call["status"] for call in calls[1:]] == [400, 200, 200]
    assert calls[1]["t"] <= calls[2]["t"]


async def test_requests_filter_by_chat_and_since(bot: Bot, telegram: StandIn) -> None:
    await bot.send_message(USER, "to the user")
    await bot.send_message(-100123, "to a group")
    [first] = await telegram.requests(chat_id=USER)

    later = await telegram.requests(since=first["seq"])

    assert [call["params"]["text"] for call in later] == ["to a group"]
    assert later[0]["response"]["result"]["chat"]["type"] == "supergroup"


@pytest.fixture
async def limited() -> AsyncIterator[Bot]:
    async with telegram_stand_in(enforce_limits=True) as telegram:
        bot = Bot(TOKEN, session=AiohttpSession(api=telegram.api))
        yield bot
        await bot.session.close()


async def test_private_chat_allows_a_short_burst_then_429(limited: Bot) -> None:
    for _ in range(3):
        await limited.send_message(USER, "burst")

    with pytest.raises(TelegramRetryAfter) as caught:
        await limited.send_message(USER, "one too many")
    await limited.get_me()  # not a message: never limited
    await limited.send_message(USER + 1, "another chat is fine")

    assert caught.value.retry_after == 1


async def test_group_allows_twenty_a_minute(limited: Bot) -> None:
    for _ in range(20):
        await limited.send_message(-42, "group")

    with pytest.raises(TelegramRetryAfter) as caught:
        await limited.send_message(-42, "twenty-first")

    assert 1 <= caught.value.retry_after <= 3  # the next of 20 slots a minute frees in 3 s


async def test_bot_sends_about_thirty_a_second_in_total(limited: Bot) -> None:
    async def send(chat_id: int) -> bool:
        try:
            await limited.send_message(chat_id, "fan-out")
        except TelegramRetryAfter:
            return False
        return True

    results = await asyncio.gather(*(send(chat_id) for chat_id in range(1, 61)))

    assert 30 <= sum(results) < 60


async def test_a_reaction_is_no_message_and_is_one_of_telegrams_emoji(limited: Bot) -> None:
    """Telegram's limits are about messages sent (Bot FAQ); a reaction sends none, so the
    stand-in's flood control leaves reactions out. Only the emoji of Telegram's list go."""
    sent = await limited.send_message(USER, "a prompt's answer")
    eyes = [ReactionTypeEmoji(emoji="👀")]
    for _ in range(40):  # forty messages would be 429 after the chat's burst of three
        assert await limited.set_message_reaction(USER, sent.message_id, reaction=eyes)
    with pytest.raises(TelegramBadRequest, match="REACTION_INVALID"):
        await limited.set_message_reaction(
            USER, sent.message_id, reaction=[ReactionTypeEmoji(emoji="🦖")]
        )
    with pytest.raises(TelegramBadRequest, match="message to react not found"):
        await limited.set_message_reaction(USER, 999_999, reaction=eyes)
