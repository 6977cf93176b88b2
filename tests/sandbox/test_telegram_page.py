"""The chat page's server side: the page and its files, the live event stream of a chat, and
the command menu. The stream is read over real HTTP, as a browser's EventSource reads it."""

import asyncio
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.types import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup
from PIL import Image
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from sandbox.asgi import serve
from sandbox.telegram.feed import BACKLOG, RESYNC, Feed
from sandbox.telegram.testing import StandIn

TOKEN = "424242:page-tests-token"
USER = 777
OTHER = 778
WAIT = 10.0  # seconds before a test gives up on an event that should have come


class Events:
    """Server-sent events parsed the way EventSource does: ``event:``/``data:`` lines up to a
    blank line; comments and ``retry:`` skipped."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()

    async def next(self) -> tuple[str, Any]:
        async with asyncio.timeout(WAIT):
            event, data = "message", ""
            async for line in self.lines:
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data = line.removeprefix("data: ")
                elif line == "" and data:
                    return event, json.loads(data)
        raise AssertionError("the stream ended")


@pytest.fixture
async def bot(local_telegram: StandIn) -> AsyncIterator[Bot]:
    """A bot whose webhook only says 200, so simulated people can write to it."""
    app = Starlette(routes=[Route("/hook", lambda request: Response(), methods=["POST"])])
    bot = Bot(TOKEN, session=AiohttpSession(api=local_telegram.api))
    async with serve(app) as url:
        await bot.set_webhook(f"{url}/hook")
        yield bot
    await bot.session.close()


@asynccontextmanager
async def watching(local_telegram: StandIn, chat_id: int = USER) -> AsyncIterator[Events]:
    async with local_telegram.control.stream("GET", f"/chats/{chat_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Events(response)


async def test_the_page_and_its_files_are_served_with_a_strict_policy(
    local_telegram: StandIn,
) -> None:
    async with httpx.AsyncClient(base_url=local_telegram.url) as client:
        page = await client.get("/")
        script = await client.get("/static/chat.js")
        style = await client.get("/static/chat.css")

    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert 'src="/static/chat.js"' in page.text
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "innerHTML" not in script.text
    assert style.status_code == 200


async def test_a_new_bot_message_arrives_after_the_snapshot(
    bot: Bot, local_telegram: StandIn
) -> None:
    await bot.send_message(USER, "earlier")
    async with watching(local_telegram) as events:
        kind, snapshot = await events.next()
        await bot.send_message(USER, "<b>Hello</b>, world", parse_mode="HTML")
        new = await events.next()

    assert kind == "snapshot" and [m["text"] for m in snapshot] == ["earlier"]
    assert new[0] == "message"
    assert new[1]["from_bot"] is True
    assert (new[1]["text"], new[1]["entities"]) == (
        "Hello, world",
        [{"type": "bold", "offset": 0, "length": 5}],
    )


async def test_the_person_sees_their_own_message_and_photo(
    bot: Bot, local_telegram: StandIn
) -> None:
    async with watching(local_telegram) as events:
        await events.next()
        await local_telegram.control.post("/send_message", json={"user_id": USER, "text": "/start"})
        text = await events.next()
        await local_telegram.control.post(
            "/send_photo",
            data={"user_id": str(USER), "caption": "this one"},
            files={"photo": ("cat.png", png(), "image/png")},
        )
        photo = await events.next()
        picture = await local_telegram.control.get(
            photo[1]["photo"]["url"].removeprefix("/_sandbox")
        )

    assert text[1]["from_bot"] is False and text[1]["text"] == "/start"
    assert photo[1]["caption"] == "this one"
    assert photo[1]["photo"]["url"].startswith("/_sandbox/files/")
    assert picture.content == png()


async def test_edits_deletions_actions_and_answers_are_pushed(
    bot: Bot, local_telegram: StandIn
) -> None:
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Again", callback_data="again")]]
    )
    sent = await bot.send_message(USER, "Queued", reply_markup=keyboard)
    async with watching(local_telegram) as events:
        await events.next()
        await bot.send_chat_action(USER, "upload_photo")
        action = await events.next()
        pressed = await local_telegram.control.post(
            "/press_button",
            json={"user_id": USER, "message_id": sent.message_id, "callback_data": "again"},
        )
        await bot.answer_callback_query(pressed.json()["update"]["callback_query"]["id"], "Sure")
        toast = await events.next()
        await bot.edit_message_text("Drawing", chat_id=USER, message_id=sent.message_id)
        edited = await events.next()
        await bot.delete_message(USER, sent.message_id)
        deleted = await events.next()

    assert action == ("action", {"action": "upload_photo"})
    assert edited[0] == "message"
    assert (edited[1]["text"], edited[1]["edited"]) == ("Drawing", True)
    assert toast == ("toast", {"text": "Sure", "show_alert": False})
    assert deleted == ("delete", {"message_id": sent.message_id})


async def test_a_stream_sees_only_its_own_chat(bot: Bot, local_telegram: StandIn) -> None:
    async with watching(local_telegram, OTHER) as events:
        await events.next()
        await bot.send_message(USER, "not for you")
        await bot.send_message(OTHER, "for you")
        kind, message = await events.next()

    assert (kind, message["text"]) == ("message", "for you")


async def test_reset_sends_a_fresh_snapshot(bot: Bot, local_telegram: StandIn) -> None:
    await bot.send_message(USER, "before the reset")
    async with watching(local_telegram) as events:
        await events.next()
        (await local_telegram.control.post("/reset")).raise_for_status()
        after = await events.next()

    assert after == ("snapshot", [])


async def test_the_command_menu_is_the_persons_language_or_the_default(
    bot: Bot, local_telegram: StandIn
) -> None:
    await bot.set_my_commands([BotCommand(command="start", description="Start")])
    await bot.set_my_commands(
        [BotCommand(command="start", description="Начать")], language_code="ru"
    )

    async def menu(language: str) -> list[str]:
        response = await local_telegram.control.get(
            f"/chats/{USER}/commands", params={"language_code": language}
        )
        return [command["description"] for command in response.json()]

    assert await menu("ru") == ["Начать"]
    assert await menu("de") == ["Start"]


async def test_a_watcher_that_falls_behind_is_told_to_start_over() -> None:
    feed = Feed()
    with feed.watch(USER) as changes:
        for message_id in range(BACKLOG + 1):
            feed.publish(USER, "message", message_id=message_id)

        assert changes.qsize() == 1
        assert changes.get_nowait().event == RESYNC


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), "teal").save(out, "PNG")
    return out.getvalue()
