"""The Telegram stand-in's inline mode and Mini App methods as aiogram sees them: an inline
query answered once, with results checked as Telegram checks them; prepared messages shared
by their user only; a Web App URL HTTPS (http on loopback only); initData that aiogram's
validator accepts under the bot's token and no other."""

import io
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    BufferedInputFile,
    InlineQueryResultCachedDocument,
    InlineQueryResultCachedPhoto,
    InlineQueryResultsButton,
    MenuButtonWebApp,
    WebAppInfo,
)
from aiogram.utils.web_app import safe_parse_webapp_init_data
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.asgi import serve
from sandbox.telegram.testing import StandIn

TOKEN = "123456:AAH-test_token_abcdef"
USER = 4242
GROUP = -1004242


async def accept(request: Request) -> Response:
    return Response(status_code=200)


@pytest.fixture
async def bot(local_telegram: StandIn) -> AsyncIterator[Bot]:
    bot = Bot(TOKEN, session=AiohttpSession(api=local_telegram.api))
    async with serve(Starlette(routes=[Route("/hook", accept, methods=["POST"])])) as url:
        await bot.set_webhook(f"{url}/hook")
        yield bot
    await bot.session.close()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(out, "PNG")
    return out.getvalue()


async def a_photo_id(bot: Bot) -> str:
    message = await bot.send_photo(USER, BufferedInputFile(png(), "a.png"))
    return (message.photo or [])[-1].file_id


async def inline_query(local_telegram: StandIn, query: str = "fox") -> str:
    response = await local_telegram.control.post(
        "/inline_query", json={"user_id": USER, "query": query}
    )
    response.raise_for_status()
    return str(response.json()["inline_query_id"])


async def test_an_inline_query_is_answered_once(bot: Bot, local_telegram: StandIn) -> None:
    photo = await a_photo_id(bot)
    query = await inline_query(local_telegram)
    result = InlineQueryResultCachedPhoto(id="a-0", photo_file_id=photo)
    button = InlineQueryResultsButton(text="Make it", start_parameter="p_Zm94")
    assert await bot.answer_inline_query(query, [result], is_personal=True, button=button)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_inline_query(query, [result])


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("photo as a document", "can't use file of type Photo as Document"),
        ("unknown file", "wrong file identifier"),
        ("same id twice", "RESULT_ID_DUPLICATE"),
        ("51 results", "RESULTS_TOO_MUCH"),
        ("start parameter with a space", "START_PARAM_INVALID"),
        ("id over 64 bytes", "RESULT_ID_INVALID"),
    ],
)
async def test_answers_telegram_refuses_are_refused(
    bot: Bot, local_telegram: StandIn, case: str, error: str
) -> None:
    photo = await a_photo_id(bot)
    query = await inline_query(local_telegram)
    results: list[InlineQueryResultCachedPhoto | InlineQueryResultCachedDocument] = [
        InlineQueryResultCachedPhoto(id="a-0", photo_file_id=photo)
    ]
    button = None
    if case == "photo as a document":
        results = [InlineQueryResultCachedDocument(id="a-0", document_file_id=photo, title="a")]
    elif case == "unknown file":
        results = [InlineQueryResultCachedPhoto(id="a-0", photo_file_id="AgACAgIAAxkBAAnope")]
    elif case == "same id twice":
        results = results * 2
    elif case == "51 results":
        results = [
            InlineQueryResultCachedPhoto(id=f"a-{n}", photo_file_id=photo) for n in range(51)
        ]
    elif case == "start parameter with a space":
        button = InlineQueryResultsButton(text="Make it", start_parameter="a fox")
    else:
        results = [InlineQueryResultCachedPhoto(id="x" * 65, photo_file_id=photo)]
    with pytest.raises(TelegramBadRequest, match=error):
        await bot.answer_inline_query(query, results, button=button)


async def test_a_prepared_message_is_shared_by_its_user_via_the_bot(
    bot: Bot, local_telegram: StandIn
) -> None:
    photo = await a_photo_id(bot)
    result = InlineQueryResultCachedPhoto(id="a-0", photo_file_id=photo, caption="a fox")
    with pytest.raises(TelegramBadRequest, match="PEER_TYPES_INVALID"):
        await bot.save_prepared_inline_message(USER, result)
    with pytest.raises(TelegramBadRequest, match="USER_ID_INVALID"):
        await bot.save_prepared_inline_message(GROUP, result, allow_group_chats=True)
    prepared = await bot.save_prepared_inline_message(USER, result, allow_group_chats=True)

    borrowed = {"user_id": USER + 1, "prepared_id": prepared.id, "chat_id": GROUP}
    assert (await local_telegram.control.post("/share", json=borrowed)).status_code == 404
    to_user = {"user_id": USER, "prepared_id": prepared.id, "chat_id": USER + 7}
    assert (await local_telegram.control.post("/share", json=to_user)).status_code == 400
    shared = await local_telegram.control.post(
        "/share", json={"user_id": USER, "prepared_id": prepared.id, "chat_id": GROUP}
    )
    message = shared.json()
    assert (message["chat"]["id"], message["from"]["id"]) == (GROUP, USER)
    assert (message["via_bot"]["username"], message["caption"]) == ("kadr_bot", "a fox")
    assert message["photo"][-1]["file_unique_id"]


async def test_the_menu_button_opens_a_web_app_with_init_data_signed_by_the_token(
    bot: Bot, local_telegram: StandIn
) -> None:
    plain = MenuButtonWebApp(text="Gallery", web_app=WebAppInfo(url="http://kadr.example/app/"))
    with pytest.raises(TelegramBadRequest, match="BUTTON_URL_INVALID"):
        await bot.set_chat_menu_button(menu_button=plain)
    button = MenuButtonWebApp(text="Gallery", web_app=WebAppInfo(url="https://kadr.example/app/"))
    assert await bot.set_chat_menu_button(menu_button=button)
    shown = await bot.get_chat_menu_button(chat_id=USER)
    assert isinstance(shown, MenuButtonWebApp)
    assert (shown.text, shown.web_app.url) == ("Gallery", "https://kadr.example/app/")

    opened = (await local_telegram.control.post("/web_app", json={"user_id": USER})).json()
    url = urlsplit(opened["url"])
    assert url.geturl().startswith("https://kadr.example/app/#")
    [init_data] = parse_qs(url.fragment)["tgWebAppData"]
    assert safe_parse_webapp_init_data(TOKEN, init_data).user.id == USER  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="signature"):
        safe_parse_webapp_init_data("654321:AAH-another_token_abcdef", init_data)
