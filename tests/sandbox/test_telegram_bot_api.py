"""The Telegram stand-in as aiogram sees it: real Bot, real HTTP, Telegram-shaped answers."""

import io
from collections.abc import AsyncIterator

import httpx
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
)
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.asgi import serve
from sandbox.telegram.testing import StandIn, telegram_stand_in

TOKEN = "123456:AAH-test_token_abcdef"
CHAT = 4242


def png(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(out, "PNG")
    return out.getvalue()


async def serve_png(request: Request) -> Response:
    return Response(png(800, 600), media_type="image/png")


async def serve_html(request: Request) -> Response:
    return Response("<html>not a picture</html>", media_type="text/html")


async def serve_wide_png(request: Request) -> Response:
    return Response(png(9000, 1200), media_type="image/png")


async def serve_heavy_bmp(request: Request) -> Response:
    """Over the 5 MB Telegram fetches for a photo by URL."""
    out = io.BytesIO()
    Image.new("RGB", (1400, 1400), "olive").save(out, "BMP")
    return Response(out.getvalue(), media_type="image/bmp")


async def serve_pdf(request: Request) -> Response:
    return Response(b"%PDF-1.4\n%%EOF\n", media_type="application/pdf")


@pytest.fixture
async def images() -> AsyncIterator[str]:
    """A stand-in for fal's CDN: where result pictures live."""
    app = Starlette(
        routes=[
            Route("/cat.png", serve_png),
            Route("/page.html", serve_html),
            Route("/wide.png", serve_wide_png),
            Route("/heavy.bmp", serve_heavy_bmp),
            Route("/paper.pdf", serve_pdf),
        ]
    )
    async with serve(app) as url:
        yield url


@pytest.fixture
async def bot(local_telegram: StandIn) -> AsyncIterator[Bot]:
    bot = Bot(TOKEN, session=AiohttpSession(api=local_telegram.api))
    yield bot
    await bot.session.close()


async def test_get_me_is_the_bot_named_by_the_token(bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123456, True, "kadr_bot")


async def test_send_message_returns_a_message_and_is_recorded(
    bot: Bot, local_telegram: StandIn
) -> None:
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Again", callback_data="again:1")]]
    )
    first = await bot.send_message(
        CHAT, "<b>Ready</b> in a minute", reply_markup=keyboard, parse_mode="HTML"
    )
    second = await bot.send_message(CHAT, "and another")

    assert first.text == "Ready in a minute"
    assert [(e.type, e.offset, e.length) for e in first.entities or []] == [("bold", 0, 5)]
    assert first.reply_markup is not None
    assert first.reply_markup.model_dump() == keyboard.model_dump()
    assert first.chat.id == CHAT and first.chat.type == "private"
    assert second.message_id == first.message_id + 1
    [call, _] = await local_telegram.requests(method="sendMessage")
    assert call["params"]["chat_id"] == CHAT
    assert call["params"]["reply_markup"] == {
        "inline_keyboard": [[{"text": "Again", "callback_data": "again:1"}]]
    }
    assert call["status"] == 200
    assert call["response"]["result"]["message_id"] == first.message_id


async def test_send_photo_by_url_downloads_it_like_telegram(
    bot: Bot, images: str, local_telegram: StandIn
) -> None:
    message = await bot.send_photo(CHAT, f"{images}/cat.png", caption="a cat")

    thumbnail, full = message.photo or []
    assert (full.width, full.height) == (800, 600)
    assert max(thumbnail.width, thumbnail.height) == 320
    assert full.file_size == len(png(800, 600))
    assert message.caption == "a cat"
    [call] = await local_telegram.requests(method="sendPhoto")
    assert call["params"]["photo"] == f"{images}/cat.png"


async def test_send_photo_by_unreachable_or_wrong_url_fails(bot: Bot, images: str) -> None:
    with pytest.raises(TelegramBadRequest, match="failed to get HTTP URL content"):
        await bot.send_photo(CHAT, f"{images}/missing.png")
    with pytest.raises(TelegramBadRequest, match="wrong type of the web page content"):
        await bot.send_photo(CHAT, f"{images}/page.html")
    with pytest.raises(TelegramBadRequest, match="wrong file identifier/HTTP URL specified"):
        await bot.send_photo(CHAT, "no-such-file-id")


async def test_send_photo_upload_records_the_file(bot: Bot, local_telegram: StandIn) -> None:
    data = png(100, 50)
    message = await bot.send_photo(CHAT, BufferedInputFile(data, "result.png"))

    assert (message.photo or [])[-1].width == 100
    [call] = await local_telegram.requests(method="sendPhoto")
    [(field, described)] = call["files"].items()
    assert call["params"]["photo"] == f"attach://{field}"
    assert described["filename"] == "result.png"
    assert described["size"] == len(data)


async def test_send_photo_that_is_not_an_image_is_refused(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(CHAT, BufferedInputFile(b"not a png", "x.png"))


async def test_media_group_mixes_urls_and_uploads(
    bot: Bot, images: str, local_telegram: StandIn
) -> None:
    album = await bot.send_media_group(
        CHAT,
        [
            InputMediaPhoto(media=f"{images}/cat.png", caption="first"),
            InputMediaPhoto(media=BufferedInputFile(png(), "second.png")),
        ],
    )

    assert len(album) == 2
    assert album[0].media_group_id and album[0].media_group_id == album[1].media_group_id
    assert album[0].caption == "first"
    assert album[1].message_id == album[0].message_id + 1
    [call] = await local_telegram.requests(method="sendMediaGroup")
    assert call["params"]["media"][0]["media"] == f"{images}/cat.png"
    assert call["params"]["media"][1]["media"].startswith("attach://")
    assert len(call["files"]) == 1


async def test_media_group_needs_two_to_ten_items(bot: Bot, images: str) -> None:
    with pytest.raises(TelegramBadRequest, match="at least two items"):
        await bot.send_media_group(CHAT, [InputMediaPhoto(media=f"{images}/cat.png")])


async def test_sent_file_id_can_be_resent(bot: Bot) -> None:
    first = await bot.send_photo(CHAT, BufferedInputFile(png(), "a.png"))
    again = await bot.send_photo(CHAT, (first.photo or [])[-1].file_id)

    assert (again.photo or [])[-1].file_unique_id == (first.photo or [])[-1].file_unique_id
    with pytest.raises(TelegramBadRequest, match="can't use file of type Photo as Document"):
        await bot.send_document(CHAT, (first.photo or [])[-1].file_id)


async def test_edit_message_text(bot: Bot) -> None:
    sent = await bot.send_message(CHAT, "queued")

    edited = await bot.edit_message_text("done", chat_id=CHAT, message_id=sent.message_id)

    assert isinstance(edited, Message)
    assert edited.text == "done" and edited.edit_date is not None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("done", chat_id=CHAT, message_id=sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=CHAT, message_id=999)


async def test_delete_message(bot: Bot, local_telegram: StandIn) -> None:
    sent = await bot.send_message(CHAT, "progress 10%")

    assert await bot.delete_message(CHAT, sent.message_id) is True
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(CHAT, sent.message_id)
    assert (await local_telegram.control.get(f"/chats/{CHAT}/messages")).json() == []


async def test_get_file_and_download(bot: Bot) -> None:
    data = png(30, 20)
    message = await bot.send_photo(CHAT, BufferedInputFile(data, "small.png"))

    file = await bot.get_file((message.photo or [])[-1].file_id)
    downloaded = await bot.download(file)

    assert file.file_size == len(data) and file.file_path
    assert downloaded is not None and downloaded.read() == data


async def test_webhook_settings_round_trip(bot: Bot) -> None:
    await bot.set_webhook(
        "https://kadr.example/webhooks/telegram",
        secret_token="s3cret_-token",
        max_connections=10,
        allowed_updates=["message", "callback_query"],
    )

    info = await bot.get_webhook_info()
    assert info.url == "https://kadr.example/webhooks/telegram"
    assert info.max_connections == 10
    assert info.allowed_updates == ["message", "callback_query"]
    assert info.pending_update_count == 0 and info.last_error_date is None
    with pytest.raises(TelegramBadRequest, match="secret token contains unallowed characters"):
        await bot.set_webhook("https://kadr.example/hook", secret_token="bad secret!")
    await bot.delete_webhook()
    assert (await bot.get_webhook_info()).url == ""


async def test_429_fault_raises_retry_after(bot: Bot, local_telegram: StandIn) -> None:
    fault = {"method": "sendPhoto", "times": 1, "status": 429, "retry_after": 3}
    (await local_telegram.control.post("/faults", json=fault)).raise_for_status()

    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_photo(CHAT, BufferedInputFile(png(), "a.png"))
    with pytest.raises(TelegramRetryAfter):  # too soon: the flood wait runs
        await bot.send_photo(CHAT, BufferedInputFile(png(), "a.png"))
    (await local_telegram.control.delete("/faults")).raise_for_status()
    await bot.send_photo(CHAT, BufferedInputFile(png(), "a.png"))

    assert caught.value.retry_after == 3
    statuses = [call["status"] for call in await local_telegram.requests(method="sendPhoto")]
    assert statuses == [429, 429, 200]


async def test_blocked_user_raises_forbidden(bot: Bot, local_telegram: StandIn) -> None:
    (await local_telegram.control.post(f"/users/{CHAT}/block")).raise_for_status()
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(CHAT, "hello?")

    (await local_telegram.control.post(f"/users/{CHAT}/unblock")).raise_for_status()
    await bot.send_message(CHAT, "hello again")


async def test_too_long_text_and_caption_are_refused(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(CHAT, "x" * 4097)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(CHAT, "   ")
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(CHAT, BufferedInputFile(png(), "a.png"), caption="x" * 1025)


async def test_html_that_telegram_cannot_parse_is_refused(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match='Unsupported start tag "3" at byte offset 13'):
        await bot.send_message(CHAT, "I <b>❤</b> <3 cats", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="Can't find end tag"):
        await bot.send_message(CHAT, "<i>unclosed", parse_mode="HTML")


async def test_size_limits_of_uploads_and_downloads(bot: Bot) -> None:
    big = b"\0" * (20 * 1024 * 1024 + 1)
    with pytest.raises(TelegramBadRequest, match="PHOTO_SAVE_FILE_INVALID"):
        await bot.send_photo(CHAT, BufferedInputFile(big[: 10 * 1024 * 1024 + 1], "huge.png"))

    document = await bot.send_document(CHAT, BufferedInputFile(big, "video.bin"))

    assert document.document is not None and document.document.file_size == len(big)
    with pytest.raises(TelegramBadRequest, match="file is too big"):
        await bot.get_file(document.document.file_id)


@pytest.mark.parametrize(
    ("width", "height"), [(7000, 3001), (4200, 200)], ids=["sides over 10,000", "ratio over 20"]
)
async def test_a_photo_telegram_cannot_show_is_refused_as_a_photo_but_not_as_a_file(
    bot: Bot, width: int, height: int
) -> None:
    picture = png(width, height)
    with pytest.raises(TelegramBadRequest, match="PHOTO_INVALID_DIMENSIONS"):
        await bot.send_photo(CHAT, BufferedInputFile(picture, "wide.png"))
    document = await bot.send_document(CHAT, BufferedInputFile(picture, "wide.png"))
    assert document.document is not None and document.document.file_size == len(picture)


async def test_photo_urls_are_checked_like_uploads(bot: Bot, images: str) -> None:
    with pytest.raises(TelegramBadRequest, match="PHOTO_INVALID_DIMENSIONS"):
        await bot.send_photo(CHAT, f"{images}/wide.png")
    with pytest.raises(TelegramBadRequest, match="failed to get HTTP URL content"):
        await bot.send_photo(CHAT, f"{images}/heavy.bmp")


async def test_documents_by_url_are_gif_pdf_or_zip_only(bot: Bot, images: str) -> None:
    with pytest.raises(TelegramBadRequest, match="wrong type of the web page content"):
        await bot.send_document(CHAT, f"{images}/cat.png")
    document = await bot.send_document(CHAT, f"{images}/paper.pdf")
    assert document.document is not None and document.document.mime_type == "application/pdf"


async def test_a_document_shows_the_thumbnail_sent_with_it(bot: Bot) -> None:
    preview = io.BytesIO()
    Image.new("RGB", (320, 240), "navy").save(preview, "JPEG")
    sent = await bot.send_document(
        CHAT,
        BufferedInputFile(png(6000, 4500), "big.png"),
        thumbnail=BufferedInputFile(preview.getvalue(), "preview.jpg"),
    )
    unshown = await bot.send_document(
        CHAT,
        BufferedInputFile(png(64, 48), "small.png"),
        thumbnail=BufferedInputFile(png(400, 300), "preview.png"),
    )
    assert sent.document is not None and sent.document.thumbnail is not None
    assert (sent.document.thumbnail.width, sent.document.thumbnail.height) == (320, 240)
    assert unshown.document is not None and unshown.document.thumbnail is None


async def test_without_fetching_urls_are_trusted_and_downloads_relay_them(images: str) -> None:
    async with telegram_stand_in(fetch_urls=False) as local_telegram:
        bot = Bot(TOKEN, session=AiohttpSession(api=local_telegram.api))
        try:
            trusted = await bot.send_photo(CHAT, "https://cdn.invalid/never-fetched.png")
            relayed = await bot.send_photo(CHAT, f"{images}/cat.png")
            file = await bot.get_file((relayed.photo or [])[-1].file_id)
            downloaded = await bot.download(file)
        finally:
            await bot.session.close()

    assert [size.file_size for size in trusted.photo or []] == [None, None]
    assert downloaded is not None and downloaded.read() == png(800, 600)


async def test_raw_http_errors_have_telegram_shape(local_telegram: StandIn) -> None:
    async with httpx.AsyncClient(base_url=local_telegram.url) as client:
        unauthorized = await client.post("/botnot-a-token/getMe")
        unknown = await client.post(f"/bot{TOKEN}/sendTelepathy")
        as_json = await client.post(
            f"/bot{TOKEN}/SENDMESSAGE", json={"chat_id": str(CHAT), "text": "json body"}
        )
        as_query = await client.get(
            f"/bot{TOKEN}/sendMessage", params={"chat_id": "@nobody", "text": "hi"}
        )

    assert unauthorized.status_code == 401
    assert unauthorized.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert unknown.status_code == 404 and unknown.json()["description"] == "Not Found"
    assert as_json.json()["result"]["text"] == "json body"
    assert as_query.json()["description"] == "Bad Request: chat not found"
