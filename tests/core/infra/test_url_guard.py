"""Result downloads reach only fal: a URL on loopback (other than a configured fal base), on the
cloud metadata address or on a private network is never fetched, a name is judged by every
address it resolves to, a redirect is not followed, and a trickling host cannot hold a
download past its deadline."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiogram import Bot
from aiogram.types import InlineKeyboardMarkup

from core.infra.retry import RetryLater
from core.infra.url_guard import RefusedURL, UrlGuard
from core.telegram import sender as telegram_send
from core.telegram.outbox import Outbox
from core.telegram.sender import URL_FETCH_CAP, ResultSender

FAL_BASE = "http://127.0.0.1:8765"
GUARD = UrlGuard.for_fal([FAL_BASE, "https://rest.fal.ai"])

REFUSED = [
    "http://127.0.0.1:8766/files/out.mp4",  # loopback, but not the fal base's port
    "https://127.0.0.1:8765/files/out.mp4",  # the base's host and port, another scheme
    "http://localhost:8765/files/out.mp4",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://10.0.0.7/files/out.mp4",
    "http://192.168.1.1/files/out.mp4",
    "http://[::1]:8765/files/out.mp4",
    "https://v3.fal.media.evil.example/files/out.mp4",
    "http://v3.fal.media/files/out.mp4",  # fal's media host, but not over https
    "file:///etc/passwd",
]


def resolving_to(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> None:
    """Every name resolves to `addresses` (as a resolver an attacker controls might)."""

    async def getaddrinfo(
        self: asyncio.AbstractEventLoop, host: str, port: int, **_: Any
    ) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", getaddrinfo)


class Recorder:
    """An HTTP transport that records every request and answers with `answer`."""

    def __init__(self, answer: httpx.Response | None = None) -> None:
        self.urls: list[str] = []
        self.answer = answer or httpx.Response(200, content=b"mp4")

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(str(request.url))
        return self.answer


async def send_video(http: httpx.AsyncClient, url: str) -> list[str]:
    """A video over Telegram's URL cap: it must be downloaded to be uploaded."""
    sender = ResultSender(Outbox(Bot("42:TEST")), http, GUARD)
    files = [{"url": url, "file_size": URL_FETCH_CAP + 1}]
    return await sender.send_result(
        1, "video", files, caption="", buttons=InlineKeyboardMarkup(inline_keyboard=[]), attempt=1
    )


@pytest.mark.parametrize("url", REFUSED)
async def test_a_result_url_outside_fal_is_never_fetched(url: str) -> None:
    recorder = Recorder()
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http:
        with pytest.raises(RefusedURL):
            await send_video(http, url)
    assert recorder.urls == []


@pytest.mark.parametrize("address", ["10.1.2.3", "169.254.169.254", "127.0.0.1", "100.64.0.1"])
async def test_fal_media_resolving_to_a_non_global_address_is_refused(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    resolving_to(monkeypatch, "34.120.0.1", address)
    with pytest.raises(RefusedURL, match="non-global"):
        await GUARD.check("https://v3.fal.media/files/out.png")


async def test_fal_media_on_global_addresses_and_the_fal_bases_are_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolving_to(monkeypatch, "34.120.0.1")
    await GUARD.check("https://v3.fal.media/files/out.png")
    await GUARD.check("https://fal.media/files/out.png")
    await GUARD.check(f"{FAL_BASE}/files/out.png")
    await GUARD.check("https://rest.fal.ai:443/files/out.png")


async def test_a_download_goes_to_the_address_that_was_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: a name that resolves to a public address for the check and to a private
    one a moment later still reaches only the checked address, with its name kept for TLS."""
    resolving_to(monkeypatch, "34.120.0.1")
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"mp4")

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        sender = ResultSender(Outbox(Bot("42:TEST")), http, GUARD)
        async with sender._uploads(
            ["https://v3.fal.media/files/out.mp4"], telegram_send.OTHER_UPLOAD_CAP, 1
        ) as files:
            assert files[0].filename == "out.mp4"
    [request] = seen
    assert str(request.url) == "https://34.120.0.1/files/out.mp4"
    assert request.headers["host"] == "v3.fal.media"
    assert request.extensions["sni_hostname"] == "v3.fal.media"


async def test_a_redirect_from_a_fal_base_is_not_followed() -> None:
    recorder = Recorder(httpx.Response(302, headers={"location": "http://169.254.169.254/"}))
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(recorder), follow_redirects=True
    ) as http:
        with pytest.raises(RetryLater):
            await send_video(http, f"{FAL_BASE}/files/out.mp4")
    assert recorder.urls == [f"{FAL_BASE}/files/out.mp4"]


async def test_a_trickling_download_stops_at_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telegram_send, "DOWNLOAD_DEADLINE", 0.3)

    async def trickle() -> AsyncIterator[bytes]:
        while True:
            await asyncio.sleep(0.05)
            yield b"x"

    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=trickle())

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        async with asyncio.timeout(5):
            with pytest.raises(RetryLater, match="TimeoutError"):
                await send_video(http, f"{FAL_BASE}/files/out.mp4")


async def test_downloads_of_one_process_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    running, most = 0, 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)
        running -= 1
        return httpx.Response(200, content=b"x")

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        sender = ResultSender(Outbox(Bot("42:TEST")), http, GUARD)
        urls = [f"{FAL_BASE}/files/{n}.mp4" for n in range(3 * telegram_send.MAX_DOWNLOADS)]

        async def one(url: str) -> None:
            async with sender._uploads([url], telegram_send.OTHER_UPLOAD_CAP, 1):
                pass

        await asyncio.gather(*(one(url) for url in urls))
    assert most == telegram_send.MAX_DOWNLOADS
