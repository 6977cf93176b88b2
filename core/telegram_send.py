"""The Telegram sender of the workers: Telegram's answers turned into what the task does
next (wait, give up, upload instead); every call is paced by core.telegram_pacing.

Results go out by URL when Telegram can fetch them (photos ≤ 5 MB, other files ≤ 20 MB);
otherwise they are streamed through a size-capped temp file and uploaded; past the upload
cap the user gets links. A result URL is downloaded only when `UrlGuard` allows it, within a
total deadline, and only a few at a time per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import FSInputFile, InlineKeyboardMarkup, InputMediaPhoto, Message

from core.catalog import Output
from core.files import FileTooLarge, downloaded
from core.retry import RetryLater, backoff
from core.telegram_pacing import deferring
from core.url_guard import UrlGuard

log = logging.getLogger(__name__)

URL_FETCH_CAP = 20 * 1024 * 1024
PHOTO_UPLOAD_CAP = 10 * 1024 * 1024
OTHER_UPLOAD_CAP = 50 * 1024 * 1024
ALBUM_LIMIT = 10
ALBUM_FOLLOW_UP_WAIT = 10.0
#: Seconds for one result download, start to end: a host that trickles its bytes cannot hold
#: a worker slot (and a temp file) for ever; the delivery is tried again later instead.
DOWNLOAD_DEADLINE = 120.0
#: Result downloads one process runs at once: each holds up to 50 MB of disk and a connection.
MAX_DOWNLOADS = 4
#: Telegram's ways of saying "this chat will never receive anything from us".
UNREACHABLE = ("chat not found", "user is deactivated", "bot was blocked", "PEER_ID_INVALID")


class Undeliverable(Exception):
    """The chat cannot receive messages (blocked the bot, deleted account)."""


@contextlib.contextmanager
def telegram_errors(attempt: int) -> Iterator[None]:
    """Translate Telegram's answers into what the task does next."""
    try:
        yield
    except TelegramRetryAfter as exc:
        raise RetryLater(exc.retry_after, "telegram 429") from None
    except TelegramForbiddenError as exc:
        raise Undeliverable(exc.message) from None
    except TelegramBadRequest as exc:
        if any(marker in exc.message for marker in UNREACHABLE):
            raise Undeliverable(exc.message) from None
        raise
    except (TelegramServerError, TelegramNetworkError) as exc:
        raise RetryLater(backoff(attempt), f"telegram: {exc}") from None


class ResultSender:
    """`guard` decides which result URLs may be downloaded (RefusedURL for the others)."""

    def __init__(self, bot: Bot, http: httpx.AsyncClient, guard: UrlGuard) -> None:
        self.bot = bot
        self.http = http
        self.guard = guard
        self._downloads = asyncio.Semaphore(MAX_DOWNLOADS)

    async def send_result(
        self,
        chat_id: int,
        output: Output,
        files: list[dict[str, Any]],
        *,
        caption: str,
        buttons: InlineKeyboardMarkup,
        attempt: int,
    ) -> list[str]:
        """Send a job's files; returns Telegram's file ids (resendable for free)."""
        urls = [item["url"] for item in files]
        sizes = [int(item.get("file_size") or 0) for item in files]
        by_url = output != "video" or max(sizes) <= URL_FETCH_CAP
        try:
            with telegram_errors(attempt):
                if by_url:
                    try:
                        return await self._media(chat_id, output, urls, caption, buttons)
                    except TelegramBadRequest as exc:
                        if any(marker in exc.message for marker in UNREACHABLE):
                            raise
                        log.info("Telegram refused a result URL (%s); uploading", exc.message)
                async with self._uploads(output, urls, attempt) as uploads:
                    return await self._media(chat_id, output, uploads, caption, buttons)
        except FileTooLarge:
            return await self._links(chat_id, urls, caption, buttons, attempt)

    async def send_text(
        self, chat_id: int, text: str, *, attempt: int, replace_message_id: int | None = None
    ) -> None:
        """A notice: edits `replace_message_id` into it when possible, else sends it anew."""
        with telegram_errors(attempt):
            if replace_message_id is not None:
                with contextlib.suppress(TelegramBadRequest):
                    await self.bot.edit_message_text(
                        text, chat_id=chat_id, message_id=replace_message_id
                    )
                    return
            await self.bot.send_message(chat_id, text)

    async def _media(
        self,
        chat_id: int,
        output: Output,
        media: Sequence[str | FSInputFile],
        caption: str,
        buttons: InlineKeyboardMarkup,
    ) -> list[str]:
        if output == "video":
            message = await self.bot.send_video(
                chat_id, media[0], caption=caption, reply_markup=buttons, supports_streaming=True
            )
            return [message.video.file_id] if message.video else []
        if len(media) == 1:
            message = await self.bot.send_photo(
                chat_id, media[0], caption=caption, reply_markup=buttons
            )
            return _photo_ids([message])
        album = await self.bot.send_media_group(
            chat_id, [InputMediaPhoto(media=item) for item in media[:ALBUM_LIMIT]]
        )
        await self._album_buttons(chat_id, caption, buttons)
        return _photo_ids(album)

    async def _album_buttons(
        self, chat_id: int, caption: str, buttons: InlineKeyboardMarkup
    ) -> None:
        """An album cannot carry buttons: they follow on a message of their own. The album is
        already out, so a failure here must not fail (and so resend) the delivery."""
        try:
            with deferring(ALBUM_FOLLOW_UP_WAIT):
                await self.bot.send_message(chat_id, caption, reply_markup=buttons)
        except (RetryLater, TelegramAPIError) as exc:
            log.info("buttons after an album to chat %s not sent: %s", chat_id, exc)

    @contextlib.asynccontextmanager
    async def _uploads(
        self, output: Output, urls: list[str], attempt: int
    ) -> AsyncIterator[list[FSInputFile]]:
        cap = OTHER_UPLOAD_CAP if output == "video" else PHOTO_UPLOAD_CAP
        async with contextlib.AsyncExitStack() as stack:
            paths = [await self._download(stack, url, cap, attempt) for url in urls]
            yield [
                FSInputFile(path, filename=url.rsplit("/", 1)[-1])
                for path, url in zip(paths, urls, strict=True)
            ]

    async def _download(
        self, stack: contextlib.AsyncExitStack, url: str, cap: int, attempt: int
    ) -> Path:
        """One result file on disk (removed when `stack` closes). A refused URL raises
        RefusedURL; a slow or failing host is tried again later."""
        target = await self.guard.check(url)
        try:
            async with self._downloads:
                return await stack.enter_async_context(
                    downloaded(
                        self.http,
                        target.url,
                        cap=cap,
                        deadline=DOWNLOAD_DEADLINE,
                        headers=target.headers,
                        extensions=target.extensions,
                    )
                )
        except (httpx.HTTPError, TimeoutError) as exc:
            raise RetryLater(backoff(attempt), f"result download: {type(exc).__name__}") from None

    async def _links(
        self,
        chat_id: int,
        urls: list[str],
        caption: str,
        buttons: InlineKeyboardMarkup,
        attempt: int,
    ) -> list[str]:
        """Too big to upload: the user still gets the file, as links."""
        links = "\n".join(f'<a href="{html.escape(url)}">{html.escape(url)}</a>' for url in urls)
        with telegram_errors(attempt):
            await self.bot.send_message(chat_id, f"{caption}\n\n{links}", reply_markup=buttons)
        return []


def _photo_ids(messages: Sequence[Message]) -> list[str]:
    return [message.photo[-1].file_id for message in messages if message.photo]
