"""core.fal.photos against the Telegram and fal stand-ins, run as processes over real HTTP.

Processes rather than in-process servers: the memory test measures this process's Python
allocations, and the stand-ins holding or writing the file must not be counted.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tempfile
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.fal.client import FalClient
from core.fal.photos import PhotoLimits, PhotoRejected, photo_to_fal, precheck
from core.infra.files import CHUNK
from core.infra.retry import RetryLater
from core.resources import create_http
from sandbox.asgi import serve
from sandbox.stack import TEST_FAL_KEY, TEST_TOKEN, Stack

MB = 1024 * 1024
USER = 4242
LIMITS = PhotoLimits(max_bytes=20 * MB)
PEAK_BOUND = 5 * MB


@dataclass(frozen=True)
class Sent:
    """A file as the bot sees it in the user's message."""

    file_id: str
    file_size: int | None
    mime_type: str | None
    width: int | None
    height: int | None

    def precheck(self, limits: PhotoLimits = LIMITS) -> None:
        precheck(
            file_size=self.file_size,
            mime_type=self.mime_type,
            width=self.width,
            height=self.height,
            limits=limits,
        )


@dataclass
class World:
    bot: Bot
    http: httpx.AsyncClient
    fal: FalClient
    telegram_url: str
    fal_url: str

    async def send(
        self, data: bytes, *, file_name: str, content_type: str, as_document: bool = False
    ) -> Sent:
        """The user sends a photo, or a file "without compression" as a document."""
        field = "document" if as_document else "photo"
        response = await self.http.post(
            f"{self.telegram_url}/_sandbox/send_{field}",
            data={"user_id": str(USER)},
            files={field: (file_name, data, content_type)},
            timeout=60,
        )
        response.raise_for_status()
        message = response.json()["update"]["message"]
        if as_document:
            document = message["document"]
            return Sent(
                document["file_id"], document.get("file_size"), document["mime_type"], None, None
            )
        largest = message["photo"][-1]
        return Sent(
            largest["file_id"],
            largest.get("file_size"),
            None,
            largest["width"],
            largest["height"],
        )

    async def transfer(self, sent: Sent, limits: PhotoLimits = LIMITS) -> str:
        return await photo_to_fal(
            self.bot, self.http, self.fal, file_id=sent.file_id, limits=limits
        )

    async def fal_calls(self, kind: str | None = None) -> list[dict[str, Any]]:
        params = {"kind": kind} if kind else {}
        response = await self.http.get(f"{self.fal_url}/_sandbox/requests", params=params)
        response.raise_for_status()
        return list(response.json())


def jpeg(width: int = 640, height: int = 480) -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize((width, height)).convert("RGB").save(out, "JPEG")
    return out.getvalue()


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 90)).save(out, "PNG")
    return out.getvalue()


def noise_png(size: int) -> bytes:
    """A real PNG of about `size` bytes: random pixels, stored uncompressed."""
    side = math.isqrt(size // 3)
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=0)
    return out.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def reason_of(world: World, sent: Sent, limits: PhotoLimits = LIMITS) -> str:
    with pytest.raises(PhotoRejected) as caught:
        await world.transfer(sent, limits)
    return caught.value.reason


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("photos"), "unused://", "unused://")
    try:
        stack.start_telegram()
        stack.start_fal()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
async def webhook() -> AsyncIterator[str]:
    """The stand-in delivers a user's message only to a registered webhook; nothing reads it."""

    async def accept(_: Request) -> Response:
        return Response()

    async with serve(Starlette(routes=[Route("/hook", accept, methods=["POST"])])) as url:
        yield f"{url}/hook"


@pytest.fixture(scope="module")
async def clients(stack: Stack, webhook: str) -> AsyncIterator[tuple[Bot, httpx.AsyncClient]]:
    """One bot and one HTTP client, as a worker process has."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(stack.telegram_url))
    bot = Bot(TEST_TOKEN, session=session)
    http = create_http()
    try:
        await bot.set_webhook(webhook)
        yield bot, http
    finally:
        await session.close()
        await http.aclose()


@pytest.fixture
async def world(stack: Stack, clients: tuple[Bot, httpx.AsyncClient]) -> World:
    """The fal stand-in starts empty; so does the FalClient, whose storage token a reset voids."""
    bot, http = clients
    (await http.post(f"{stack.fal_url}/_sandbox/reset")).raise_for_status()
    fal = FalClient(http, key=TEST_FAL_KEY, queue_url=stack.fal_url, rest_url=stack.fal_url)
    return World(bot, http, fal, stack.telegram_url, stack.fal_url)


@pytest.fixture(autouse=True)
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every transfer, good or bad, must leave its temp file behind it removed."""
    folder = tmp_path / "temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    assert list(folder.iterdir()) == []


async def test_a_photo_reaches_fal_byte_for_byte_and_the_token_stays_home(world: World) -> None:
    data = jpeg()
    sent = await world.send(data, file_name="IMG_0001.jpg", content_type="image/jpeg")
    sent.precheck()

    access_url = await world.transfer(sent)

    [upload] = await world.fal_calls("upload")
    assert upload["body"] == {
        "size": len(data),
        "content_type": "image/jpeg",
        "file_name": "input.jpg",
    }
    cdn = await world.http.get(access_url)
    assert cdn.status_code == 200
    assert sha256(cdn.content) == sha256(data)
    recorded = json.dumps(await world.fal_calls())
    assert TEST_TOKEN not in recorded
    assert TEST_TOKEN.partition(":")[2] not in recorded
    assert "file/bot" not in recorded
    assert "photos/" not in recorded  # Telegram's file_path is not passed on either


async def test_a_png_document_keeps_its_format(world: World) -> None:
    data = png(300, 200)
    sent = await world.send(data, file_name="scan.png", content_type="image/png", as_document=True)
    sent.precheck()

    access_url = await world.transfer(sent)

    [upload] = await world.fal_calls("upload")
    assert upload["body"]["content_type"] == "image/png"
    assert upload["body"]["file_name"] == "input.png"
    assert sha256((await world.http.get(access_url)).content) == sha256(data)


async def test_over_telegrams_20_mb_is_too_big_before_and_at_download(world: World) -> None:
    sent = await world.send(noise_png(21 * MB), file_name="huge.png", content_type="image/png")
    assert sent.file_size is not None and sent.file_size > 20 * MB

    with pytest.raises(PhotoRejected) as caught:
        sent.precheck()
    assert caught.value.reason == "too_big"
    assert await reason_of(world, sent) == "too_big"
    assert await world.fal_calls() == []


async def test_over_the_modes_cap_stops_at_download(world: World) -> None:
    sent = await world.send(noise_png(12 * MB), file_name="big.png", content_type="image/png")
    retouch = PhotoLimits(max_bytes=10 * MB)

    with pytest.raises(PhotoRejected):
        sent.precheck(retouch)
    assert await reason_of(world, sent, retouch) == "too_big"
    assert await world.fal_calls() == []


async def test_a_server_hiding_the_length_is_cut_off_at_the_cap(world: World) -> None:
    """The cap is counted, not taken from Content-Length, so a lying server cannot overfill."""
    sent = await world.send(jpeg(), file_name="a.jpg", content_type="image/jpeg")
    served = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal served
        while True:
            served += CHUNK
            yield bytes(CHUNK)

    async def unsized(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless())

    limits = PhotoLimits(max_bytes=MB)
    async with httpx.AsyncClient(transport=httpx.MockTransport(unsized)) as http:
        with pytest.raises(PhotoRejected) as caught:
            await photo_to_fal(world.bot, http, world.fal, file_id=sent.file_id, limits=limits)
    assert caught.value.reason == "too_big"
    assert served <= MB + 2 * CHUNK


async def test_a_text_document_is_not_an_image(world: World) -> None:
    sent = await world.send(
        b"dear bot,\nplease make me look younger\n" * 100,
        file_name="notes.txt",
        content_type="text/plain",
        as_document=True,
    )
    with pytest.raises(PhotoRejected) as caught:
        sent.precheck()
    assert caught.value.reason == "not_an_image"
    # Even if the handler let it through, the bytes give it away.
    assert await reason_of(world, sent) == "not_an_image"
    assert await world.fal_calls() == []


async def test_a_wide_panorama_has_too_large_dimensions(world: World) -> None:
    """Telegram would not take 9000x100 as a photo, so it comes as a document, without sizes."""
    sent = await world.send(
        png(9000, 100), file_name="pano.png", content_type="image/png", as_document=True
    )
    sent.precheck()  # a document carries no dimensions to check

    assert await reason_of(world, sent, PhotoLimits(max_bytes=10 * MB)) == "too_large_dimensions"
    assert await world.fal_calls() == []


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (jpeg()[:300], {"unreadable"}),  # cut inside the header
        (b"\xff\xd8\xff\xe0" + os.urandom(4096), {"unreadable", "not_an_image"}),
        (os.urandom(4096), {"not_an_image"}),
    ],
    ids=["truncated", "jpeg-magic-then-garbage", "garbage"],
)
async def test_a_broken_jpg_is_refused(world: World, data: bytes, expected: set[str]) -> None:
    sent = await world.send(
        data, file_name="broken.jpg", content_type="image/jpeg", as_document=True
    )
    sent.precheck()  # its name and type claim JPEG

    assert await reason_of(world, sent) in expected
    assert await world.fal_calls() == []


async def test_a_tiny_photo_has_too_small_dimensions(world: World) -> None:
    sent = await world.send(jpeg(40, 30), file_name="icon.jpg", content_type="image/jpeg")
    with pytest.raises(PhotoRejected) as caught:
        sent.precheck()
    assert caught.value.reason == "too_small_dimensions"
    assert await reason_of(world, sent) == "too_small_dimensions"


async def test_a_15_mb_transfer_holds_well_under_5_mb(world: World) -> None:
    data = noise_png(15 * MB)
    sent = await world.send(data, file_name="big.png", content_type="image/png")
    # Lazy imports and first-call set-up are not per-transfer costs: pay them before measuring.
    await world.transfer(
        await world.send(png(100, 100), file_name="w.png", content_type="image/png")
    )

    tracemalloc.start()
    try:
        access_url = await world.transfer(sent)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < PEAK_BOUND, f"peak {peak / MB:.2f} MB for a {len(data) / MB:.1f} MB photo"
    uploads = await world.fal_calls("upload")
    assert uploads[-1]["body"]["size"] == len(data)
    async with world.http.stream("GET", access_url) as cdn:
        digest = hashlib.sha256()
        async for chunk in cdn.aiter_bytes(CHUNK):
            digest.update(chunk)
    assert digest.hexdigest() == sha256(data)


async def test_telegram_failing_asks_for_a_later_try_without_the_token(world: World) -> None:
    sent = await world.send(jpeg(), file_name="a.jpg", content_type="image/jpeg")
    fault = {"method": "getFile", "status": 502, "description": "Bad Gateway"}
    (await world.http.post(f"{world.telegram_url}/_sandbox/faults", json=fault)).raise_for_status()

    with pytest.raises(RetryLater) as caught:
        await world.transfer(sent)
    assert TEST_TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.ConnectError, RetryLater),
        (503, RetryLater),
        (429, RetryLater),
        (404, PhotoRejected),
    ],
    ids=["unreachable", "503", "429", "404"],
)
async def test_download_failures_keep_the_token_out_of_the_error(
    world: World, answer: type[httpx.TransportError] | int, expected: type[Exception]
) -> None:
    sent = await world.send(jpeg(), file_name="a.jpg", content_type="image/jpeg")

    async def download(request: httpx.Request) -> httpx.Response:
        assert TEST_TOKEN in str(request.url)  # the real download URL was asked for
        if isinstance(answer, int):
            return httpx.Response(answer, text=f"error at {request.url}")
        raise answer(f"cannot reach {request.url}", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(download)) as http:
        with pytest.raises(expected) as caught:
            await photo_to_fal(world.bot, http, world.fal, file_id=sent.file_id, limits=LIMITS)
    assert TEST_TOKEN not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


async def test_an_unknown_file_id_is_unreadable(world: World) -> None:
    missing = Sent("AgACAgIAAxkBAAnope", None, None, None, None)
    assert await reason_of(world, missing) == "unreadable"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"file_size": 21 * MB}, "too_big"),
        ({"file_size": 11 * MB}, "too_big"),
        ({"mime_type": "application/pdf"}, "not_an_image"),
        ({"mime_type": "image/gif"}, "not_an_image"),
        ({"width": 5000, "height": 300}, "too_large_dimensions"),
        ({"width": 300, "height": 4097}, "too_large_dimensions"),
        ({"width": 63, "height": 300}, "too_small_dimensions"),
    ],
)
def test_precheck_refuses(fields: dict[str, Any], reason: str) -> None:
    values = {"file_size": None, "mime_type": None, "width": None, "height": None, **fields}
    with pytest.raises(PhotoRejected) as caught:
        precheck(**values, limits=PhotoLimits(max_bytes=10 * MB))
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"file_size": 10 * MB, "mime_type": "IMAGE/JPEG", "width": 4096, "height": 64},
        {"mime_type": "image/webp", "width": 1280},
    ],
)
def test_precheck_lets_through_what_it_cannot_fault(fields: dict[str, Any]) -> None:
    values = {"file_size": None, "mime_type": None, "width": None, "height": None, **fields}
    precheck(**values, limits=PhotoLimits(max_bytes=10 * MB))


def test_no_limit_goes_past_telegrams_download_cap() -> None:
    with pytest.raises(ValueError):
        PhotoLimits(max_bytes=21 * MB)
