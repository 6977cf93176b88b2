"""The stand-in's control API: simulated people push real updates to the bot's webhook, tests
inject faults and flood limits, and read back what the bot did."""

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
from sandbox.telegram.limits import FloodControl
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


def approve_checkouts(update: dict[str, Any]) -> dict[str, Any] | None:
    """The bot's answer to a pre-checkout query, in its webhook answer: yes."""
    if "pre_checkout_query" not in update:
        return None
    query_id = update["pre_checkout_query"]["id"]
    return {"method": "answerPreCheckoutQuery", "pre_checkout_query_id": query_id, "ok": True}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    async with serve(
        Starlette(routes=[Route("/hook", receiver.endpoint, methods=["POST"])])
    ) as url:
        receiver.url = f"{url}/hook"
        yield receiver


@pytest.fixture
async def bot(local_telegram: StandIn, receiver: Receiver) -> AsyncIterator[Bot]:
    bot = Bot(TOKEN, session=AiohttpSession(api=local_telegram.api))
    await bot.set_webhook(receiver.url, secret_token=SECRET)
    yield bot
    await bot.session.close()


async def act(local_telegram: StandIn, action: str, **body: Any) -> dict[str, Any]:
    response = await local_telegram.control.post(f"/{action}", json=body)
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
    bot: Bot, local_telegram: StandIn, receiver: Receiver
) -> None:
    result = await act(
        local_telegram, "send_message", user_id=USER, text="/start promo", language_code="ru"
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
    bot: Bot, local_telegram: StandIn, receiver: Receiver
) -> None:
    first = await act(local_telegram, "send_message", user_id=USER, text="one")
    second = await act(local_telegram, "send_message", user_id=USER, text="two", repeat=3)

    assert second["update"]["update_id"] == first["update"]["update_id"] + 1
    assert len(second["deliveries"]) == 3
    assert [body["update_id"] for _, body in receiver.received[1:]] == [
        second["update"]["update_id"]
    ] * 3


async def test_control_calls_need_a_webhook(local_telegram: StandIn) -> None:
    response = await local_telegram.control.post(
        "/send_message", json={"user_id": USER, "text": "hi"}
    )

    assert response.status_code == 409
    assert "setWebhook" in response.json()["error"]


async def test_press_button_sends_a_callback_query_answered_once(
    bot: Bot, local_telegram: StandIn, receiver: Receiver
) -> None:
    message_id = await keyboard_message(bot)

    result = await act(
        local_telegram, "press_button", user_id=USER, message_id=message_id, callback_data="retry:7"
    )

    query = Update.model_validate(result["update"], context={"bot": bot}).callback_query
    assert query is not None and query.message is not None
    assert query.data == "retry:7" and query.message.message_id == message_id
    assert await bot.answer_callback_query(query.id, text="On it") is True
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query.id)
    unknown = await local_telegram.control.post(
        "/press_button", json={"user_id": USER, "message_id": 999, "callback_data": "x"}
    )
    wrong_data = await local_telegram.control.post(
        "/press_button", json={"user_id": USER, "message_id": message_id, "callback_data": "x"}
    )
    assert (unknown.status_code, wrong_data.status_code) == (404, 400)


async def test_allowed_updates_filters_what_is_pushed(
    bot: Bot, local_telegram: StandIn, receiver: Receiver
) -> None:
    await bot.set_webhook(receiver.url, secret_token=SECRET, allowed_updates=["message"])
    message_id = await keyboard_message(bot)

    result = await act(
        local_telegram, "press_button", user_id=USER, message_id=message_id, callback_data="retry:7"
    )

    assert result["deliveries"] == [] and "callback_query" in result["skipped"]
    assert receiver.received == []


async def test_user_photo_has_two_downloadable_sizes(
    bot: Bot, local_telegram: StandIn, receiver: Receiver
) -> None:
    response = await local_telegram.control.post(
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


async def test_an_album_is_one_update_per_photo_sharing_a_media_group_id(
    bot: Bot, local_telegram: StandIn, receiver: Receiver
) -> None:
    files = {f"photo{i}": (f"p{i}.jpg", jpeg(300 + i, 200), "image/jpeg") for i in range(3)}
    response = await local_telegram.control.post(
        "/send_album",
        data={"user_id": str(USER), "caption": "us", "order": "2,0,1,1"},
        files=files,
    )

    assert response.status_code == 200, response.text
    assert len(response.json()["deliveries"]) == 4
    messages = [
        Update.model_validate(body, context={"bot": bot}).message for _, body in receiver.received
    ]
    assert all(m is not None for m in messages)
    ids = [m.message_id for m in messages if m is not None]
    assert ids[1] < ids[2] < ids[0] and ids[3] == ids[2]
    assert {m.media_group_id for m in messages if m is not None} == {
        response.json()["media_group_id"]
    }
    captions = {m.message_id: m.caption for m in messages if m is not None}
    assert captions == {ids[1]: "us", ids[2]: None, ids[0]: None}
    assert receiver.received[3][1] == receiver.received[2][1]  # the same update again


@pytest.mark.parametrize(
    ("count", "order", "error"),
    [(1, "", "2 to 10 photos"), (11, "", "2 to 10 photos"), (2, "0,0", "each of the 2")],
)
async def test_an_album_refuses_what_telegram_cannot_send(
    bot: Bot, local_telegram: StandIn, count: int, order: str, error: str
) -> None:
    files = {f"photo{i}": (f"p{i}.jpg", jpeg(64, 64), "image/jpeg") for i in range(count)}
    response = await local_telegram.control.post(
        "/send_album", data={"user_id": str(USER), "order": order}, files=files
    )

    assert response.status_code == 400
    assert error in response.json()["error"]


async def test_user_photo_as_document_and_plain_documents(
    bot: Bot, local_telegram: StandIn
) -> None:
    as_document = await local_telegram.control.post(
        "/send_photo",
        data={"user_id": str(USER), "as_document": "1"},
        files={"photo": ("raw.png", b"\x89PNG...", "image/png")},
    )
    document = await local_telegram.control.post(
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


async def test_chat_view_shows_edits_and_hides_deleted(bot: Bot, local_telegram: StandIn) -> None:
    await act(local_telegram, "send_message", user_id=USER, text="a red fox")
    progress = await bot.send_message(USER, "Queued")
    notice = await bot.send_message(USER, "Generating…")
    await bot.edit_message_text("Done", chat_id=USER, message_id=progress.message_id)
    await bot.delete_message(USER, notice.message_id)
    await bot.send_photo(USER, BufferedInputFile(jpeg(40, 30), "fox.jpg"), caption="Your fox")

    view = (await local_telegram.control.get(f"/chats/{USER}/messages")).json()

    assert [(m["from_bot"], m.get("text") or m.get("caption"), m["edited"]) for m in view] == [
        (False, "a red fox", False),
        (True, "Done", True),
        (True, "Your fox", False),
    ]
    picture = await local_telegram.control.get(view[2]["photo"]["url"])
    assert Image.open(io.BytesIO(picture.content)).size == (40, 30)


async def test_a_reply_carries_the_message_it_answers_as_telegram_does(
    bot: Bot, local_telegram: StandIn, receiver: Receiver
) -> None:
    """`reply_to_message` is the whole message replied to, without its own reply; the chat
    view quotes it. A message that is not in the chat cannot be replied to."""
    fox = await bot.send_photo(USER, BufferedInputFile(jpeg(40, 30), "fox.jpg"), caption="a fox")
    first = await act(
        local_telegram,
        "send_message",
        user_id=USER,
        text="make it red",
        reply_to_message_id=fox.message_id,
    )
    second = await act(
        local_telegram,
        "send_message",
        user_id=USER,
        text="and blue",
        reply_to_message_id=first["update"]["message"]["message_id"],
    )
    missing = await local_telegram.control.post(
        "/send_message", json={"user_id": USER, "text": "hm", "reply_to_message_id": 999}
    )

    message = Update.model_validate(first["update"], context={"bot": bot}).message
    assert message is not None and message.reply_to_message is not None
    assert message.reply_to_message.photo is not None
    assert message.reply_to_message.photo[-1].file_id == fox.photo[-1].file_id  # type: ignore[index]
    assert message.reply_to_message.caption == "a fox"
    replied = second["update"]["message"]["reply_to_message"]
    assert replied["text"] == "make it red" and "reply_to_message" not in replied
    assert missing.status_code == 400
    view = (await local_telegram.control.get(f"/chats/{USER}/messages")).json()
    assert view[1]["reply_to"] == {
        "message_id": fox.message_id,
        "from_bot": True,
        "kind": "photo",
        "text": "a fox",
    }


async def test_reset_forgets_people_but_keeps_webhook_and_files(
    bot: Bot, local_telegram: StandIn, receiver: Receiver
) -> None:
    sent = await bot.send_photo(USER, BufferedInputFile(jpeg(40, 30), "keep.jpg"))
    (await local_telegram.control.post(f"/users/{USER}/block")).raise_for_status()

    (await local_telegram.control.post("/reset")).raise_for_status()

    assert await local_telegram.requests() == []
    assert (await local_telegram.control.get(f"/chats/{USER}/messages")).json() == []
    assert (await bot.get_webhook_info()).url == receiver.url
    assert (await bot.get_file((sent.photo or [])[-1].file_id)).file_size
    await bot.send_message(USER, "not blocked any more")


async def test_failed_delivery_shows_in_webhook_info(
    bot: Bot, local_telegram: StandIn, receiver: Receiver
) -> None:
    receiver.status = 500

    result = await act(local_telegram, "send_message", user_id=USER, text="hi")

    assert result["deliveries"][0]["status"] == 500
    info = await bot.get_webhook_info()
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
    assert info.last_error_date is not None


async def test_method_in_the_webhook_answer_is_executed(
    bot: Bot, local_telegram: StandIn, receiver: Receiver
) -> None:
    receiver.reply = lambda update: {
        "method": "sendMessage",
        "chat_id": update["message"]["chat"]["id"],
        "text": "pong",
    }

    await act(local_telegram, "send_message", user_id=USER, text="ping")

    [call] = await local_telegram.requests(method="sendMessage")
    assert call["token"] == TOKEN and call["params"] == {"chat_id": USER, "text": "pong"}


async def test_paying_an_invoice_in_stars(
    bot: Bot, local_telegram: StandIn, receiver: Receiver
) -> None:
    invoice = await bot.send_invoice(
        USER,
        title="100 credits",
        description="Credits for pictures",
        payload="order-42",
        currency="XTR",
        prices=[LabeledPrice(label="100 credits", amount=50)],
    )
    receiver.reply = approve_checkouts

    result = await act(local_telegram, "pay", user_id=USER, message_id=invoice.message_id)

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


async def test_a_subscription_link_is_paid_renewed_until_cancelled_and_re_enabled(
    bot: Bot, local_telegram: StandIn, receiver: Receiver
) -> None:
    with pytest.raises(TelegramBadRequest, match="SUBSCRIPTION_PERIOD_INVALID"):
        await bot.create_invoice_link(
            "Monthly",
            "Credits",
            "plan-1",
            "XTR",
            [LabeledPrice(label="m", amount=5)],
            subscription_period=3600,
        )
    link = await bot.create_invoice_link(
        title="Monthly",
        description="Credits every 30 days",
        payload="plan-1",
        currency="XTR",
        prices=[LabeledPrice(label="Monthly", amount=250)],
        subscription_period=2592000,
    )
    assert link.startswith("https://t.me/$")
    receiver.reply = approve_checkouts

    def payment(result: dict[str, Any]) -> dict[str, Any]:
        return result["successful_payment"]["update"]["message"]["successful_payment"]

    first = await act(local_telegram, "pay_link", user_id=USER, link=link)
    started = payment(first)
    assert (started["is_recurring"], started["is_first_recurring"]) == (True, True)
    renewal = payment(await act(local_telegram, "renew", charge_id=first["charge_id"]))
    assert renewal["is_recurring"] and "is_first_recurring" not in renewal
    assert renewal["subscription_expiration_date"] == (
        started["subscription_expiration_date"] + 2592000
    )
    assert renewal["telegram_payment_charge_id"] != started["telegram_payment_charge_id"]

    with pytest.raises(TelegramBadRequest, match="USER_ID_INVALID"):
        await bot.edit_user_star_subscription(USER + 1, first["charge_id"], True)
    assert await bot.edit_user_star_subscription(USER, first["charge_id"], True) is True
    refused = await local_telegram.control.post("/renew", json={"charge_id": first["charge_id"]})
    assert refused.status_code == 409
    assert await bot.edit_user_star_subscription(USER, first["charge_id"], False) is True
    assert payment(await act(local_telegram, "renew", charge_id=first["charge_id"]))["is_recurring"]


async def test_raw_updates_are_pushed_as_given(
    bot: Bot, local_telegram: StandIn, receiver: Receiver
) -> None:
    reaction = {"message_reaction": {"chat": {"id": USER, "type": "private"}}}
    edited = {"edited_message": {"message_id": 1, "text": "x"}, "brand_new_field": {}}

    filtered = (await local_telegram.control.post("/updates", json=reaction)).json()
    odd = (await local_telegram.control.post("/updates", json=edited)).json()
    garbage = (await local_telegram.control.post("/updates?repeat=2", json=[1, 2])).json()

    assert filtered["deliveries"] == []
    assert odd["update"]["update_id"] and odd["update"]["brand_new_field"] == {}
    assert len(garbage["deliveries"]) == 2
    assert [body for _, body in receiver.received] == [odd["update"], [1, 2], [1, 2]]


async def test_faults_can_delay_pick_a_chat_or_hit_any_message_method(
    bot: Bot, local_telegram: StandIn
) -> None:
    faults = [
        {"method": "getMe", "status": None, "delay": 0.2},
        {"chat_id": 1, "status": 500, "description": "Internal Server Error: restart"},
        {"method": None, "status": 400, "description": "Bad Request: chat not found"},
    ]
    for fault in faults:
        (await local_telegram.control.post("/faults", json=fault)).raise_for_status()

    await bot.get_me()
    assert await bot.send_chat_action(USER, "typing") is True  # not a message
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(USER, "a")
    await bot.send_message(USER, "b")
    (await local_telegram.control.delete("/faults")).raise_for_status()
    await bot.send_message(1, "no fault left")

    calls = await local_telegram.requests(method=["getMe", "sendMessage"])
    assert calls[0]["method"] == "getMe" and calls[0]["status"] == 200
    assert [call["status"] for call in calls[1:]] == [400, 200, 200]
    assert calls[1]["t"] <= calls[2]["t"]


async def test_an_injected_429_makes_the_bot_wait_its_retry_after(
    bot: Bot, local_telegram: StandIn
) -> None:
    """As Telegram's flood wait: every message of the bot is refused until it has passed."""
    fault = {"method": "sendMessage", "status": 429, "retry_after": 60}
    (await local_telegram.control.post("/faults", json=fault)).raise_for_status()

    with pytest.raises(TelegramRetryAfter) as first:
        await bot.send_message(USER, "a")
    with pytest.raises(TelegramRetryAfter) as again:
        await bot.send_message(USER + 1, "another chat, too soon")
    await bot.get_me()  # not a message

    assert first.value.retry_after == 60
    assert 0 < again.value.retry_after <= 60


async def test_requests_filter_by_chat_and_since(bot: Bot, local_telegram: StandIn) -> None:
    await bot.send_message(USER, "to the user")
    await bot.send_message(-100123, "to a group")
    [first] = await local_telegram.requests(chat_id=USER)

    later = await local_telegram.requests(since=first["seq"])

    assert [call["params"]["text"] for call in later] == ["to a group"]
    assert later[0]["response"]["result"]["chat"]["type"] == "supergroup"


@pytest.fixture
async def limited() -> AsyncIterator[Bot]:
    async with telegram_stand_in(enforce_limits=True) as stand_in:
        bot = Bot(TOKEN, session=AiohttpSession(api=stand_in.api))
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


def test_the_bot_may_send_thirty_a_second_in_total() -> None:
    """Thirty chats at one instant pass, the thirty-first is told to retry; once the bucket
    has refilled by one message (the stand-in's own clock moves on) one more passes."""
    now = 0.0
    flood = FloodControl(clock=lambda: now)

    answers = [flood.acquire(chat_id) for chat_id in range(1, 32)]
    now += 1.2 / 30
    later = [flood.acquire(chat_id) for chat_id in range(32, 34)]

    assert answers == [None] * 30 + [1]
    assert later == [None, 1]


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


async def test_a_message_filed_without_a_delivery_can_be_reacted_to_and_replied_to(
    bot: Bot, local_telegram: StandIn
) -> None:
    """A benchmark posts its users' updates to the bot itself and files their messages first
    (`/messages`): the bot's reaction and reply then find them, as in Telegram."""
    message = {
        "message_id": 7,
        "date": 1_700_000_000,
        "chat": {"id": USER, "type": "private", "first_name": "Ann"},
        "from": {"id": USER, "is_bot": False, "first_name": "Ann"},
        "text": "a fox",
    }
    eyes = [ReactionTypeEmoji(emoji="👀")]
    with pytest.raises(TelegramBadRequest, match="message to react not found"):
        await bot.set_message_reaction(USER, 7, reaction=eyes)

    assert await act(local_telegram, "messages", messages=[message]) == {"known": 1}

    assert await bot.set_message_reaction(USER, 7, reaction=eyes)
    reply = await bot.send_message(USER, "on it", reply_to_message_id=7)
    assert reply.message_id == 8
    bad = await local_telegram.control.post("/messages", json={"messages": [{"text": "x"}]})
    assert bad.status_code == 400
