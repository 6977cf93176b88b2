"""ResultSender against the Telegram stand-in: a picture Telegram will not show as a photo goes
as a document with its caption, buttons and a preview, whether fal's figures tell so before
sending or only Telegram's refusal does."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.infra.url_guard import UrlGuard
from core.telegram.outbox import Outbox
from core.telegram.sender import ResultSender
from sandbox.asgi import serve
from sandbox.telegram.testing import StandIn

CHAT = 77
BUTTONS = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="🔁 Regenerate", callback_data="r")]]
)


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "orange").save(out, "PNG")
    return out.getvalue()


async def serve_panorama(request: Request) -> Response:
    return Response(png(9500, 700), media_type="image/png")


@pytest.fixture
async def sender(local_telegram: StandIn) -> AsyncIterator[tuple[ResultSender, StandIn, str]]:
    """The sender, the stand-in it sends to, and a fal media host of the stand-in's reach."""
    media = Starlette(routes=[Route("/files/panorama.png", serve_panorama)])
    async with (
        serve(media) as fal,
        httpx.AsyncClient() as http,
        Bot("42:TESTTESTTESTTESTTESTTEST", session=AiohttpSession(api=local_telegram.api)) as bot,
    ):
        yield ResultSender(Outbox(bot), http, UrlGuard.for_fal([fal])), local_telegram, fal


@pytest.mark.parametrize(
    "figures",
    [{"width": 9500, "height": 700}, {}],
    ids=["fal gave the size", "Telegram refused the photo"],
)
async def test_a_picture_too_wide_for_a_photo_goes_as_a_document(
    sender: tuple[ResultSender, StandIn, str], figures: dict[str, Any]
) -> None:
    results, telegram, fal = sender
    image = {"url": f"{fal}/files/panorama.png", **figures}
    sent = await results.send_result(
        CHAT, "image", [image], caption="a long shore", buttons=BUTTONS, attempt=1
    )
    sends = await telegram.requests(chat_id=CHAT)
    refused = [] if figures else [("sendPhoto", 400)]
    assert [(s["method"], s["response"].get("error_code")) for s in sends] == [
        *refused,
        ("sendDocument", None),
    ]
    document = sends[-1]["response"]["result"]["document"]
    assert sent.file_ids == [document["file_id"]]
    assert sent.kinds == ["document"]
    assert sends[-1]["params"]["caption"] == "a long shore"
    assert sends[-1]["params"]["reply_markup"] == BUTTONS.model_dump(exclude_none=True)
    assert (document["thumbnail"]["width"], document["thumbnail"]["height"]) == (320, 24)
