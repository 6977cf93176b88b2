"""The Telegram sender of the workers: Telegram's answers turned into what the task does
next (wait, give up, upload instead). Results go with the outbox's `result` Bot, the
buttons after an album with `follow_up`, notices with `notice` (core/telegram/outbox.py).

Results go out by URL when Telegram can fetch them (photos ≤ 5 MB, other files ≤ 20 MB);
otherwise they are streamed through a size-capped temp file and uploaded; past the upload
cap the user gets links. A picture Telegram will not show as a photo (width + height over
10,000, sides further apart than 20:1, a file over 10 MB) goes as a document with the same
caption and buttons and a small preview: decided before sending from fal's figures, and
after Telegram says so for a picture fal gave none for. A result URL is downloaded only when
`UrlGuard` allows it, within a total deadline, and only a few at a time per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import io
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import (
    BufferedInputFile,
    FSInputFile,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    Message,
)
from PIL import Image

from core.domain.catalog import Output
from core.infra.files import FileTooLarge, downloaded
from core.infra.retry import RetryLater, backoff
from core.infra.url_guard import UrlGuard
from core.telegram.outbox import Outbox
from core.telegram.receipts import Sent

log = logging.getLogger(__name__)

URL_FETCH_CAP = 20 * 1024 * 1024
PHOTO_URL_CAP = 5 * 1024 * 1024
PHOTO_UPLOAD_CAP = 10 * 1024 * 1024
OTHER_UPLOAD_CAP = 50 * 1024 * 1024
#: A photo's width + height at most, and its longer side at most this many times the shorter.
PHOTO_SIDES_SUM = 10_000
PHOTO_RATIO = 20
#: Telegram's answers for a picture it will not take as a photo (its dimensions; its size).
NOT_A_PHOTO = ("PHOTO_INVALID_DIMENSIONS", "PHOTO_SAVE_FILE_INVALID")
#: A document's thumbnail, as Telegram takes it: a JPEG of at most 320 a side, under 200 kB.
PREVIEW_SIDE = 320
PREVIEW_BYTES = 200 * 1024
#: Pixels decoded for one preview at most (about 100 MB of memory): a larger picture goes
#: without one rather than costing the worker more.
PREVIEW_PIXELS = 25_000_000
ALBUM_LIMIT = 10
#: Seconds for one result download, start to end: a host that trickles its bytes cannot hold
#: a worker slot (and a temp file) for ever; the delivery is tried again later instead.
DOWNLOAD_DEADLINE = 120.0
#: Result downloads one process runs at once: each holds up to 50 MB of disk and a connection.
MAX_DOWNLOADS = 4
#: Telegram's ways of saying "this chat will never receive anything from us".
UNREACHABLE = ("chat not found", "user is deactivated", "bot was blocked", "PEER_ID_INVALID")


class Undeliverable(Exception):
    """The chat cannot receive messages (blocked the bot, deleted account)."""


def fits_photo(item: dict[str, Any]) -> bool:
    """Whether Telegram shows this result as a photo, as far as fal's figures (width, height,
    file_size) tell; a figure fal left out is not held against it."""
    width, height = int(item.get("width") or 0), int(item.get("height") or 0)
    if int(item.get("file_size") or 0) > PHOTO_UPLOAD_CAP:
        return False
    if width <= 0 or height <= 0:
        return True
    return width + height <= PHOTO_SIDES_SUM and max(width, height) <= PHOTO_RATIO * min(
        width, height
    )


def refused_as_photo(exc: Exception) -> bool:
    """Telegram (or our own upload cap) says the picture cannot be a photo, only a file."""
    if isinstance(exc, FileTooLarge):
        return True
    return isinstance(exc, TelegramBadRequest) and any(m in exc.message for m in NOT_A_PHOTO)


def preview(path: Path) -> bytes | None:
    """A document's thumbnail made from the picture, or None when it cannot be (not an image
    Pillow reads, too many pixels to decode, or no JPEG small enough)."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (PREVIEW_SIDE, PREVIEW_SIDE))  # JPEG decodes at 1/2..1/8
            if image.width * image.height > PREVIEW_PIXELS:
                return None
            image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=80)
    except Exception:  # Pillow raises many kinds for a file it cannot read
        return None
    data = out.getvalue()
    return data if len(data) < PREVIEW_BYTES else None


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

    def __init__(self, outbox: Outbox, http: httpx.AsyncClient, guard: UrlGuard) -> None:
        self.outbox = outbox
        self.http = http
        self.guard = guard
        self._downloads = asyncio.Semaphore(MAX_DOWNLOADS)
        self._previews = asyncio.Semaphore(1)  # each decodes a picture: one at a time

    async def send_result(
        self,
        chat_id: int,
        output: Output,
        files: list[dict[str, Any]],
        *,
        caption: str,
        buttons: InlineKeyboardMarkup,
        attempt: int,
    ) -> Sent:
        """Send a job's files; returns Telegram's file ids (resendable for free) of the
        photos, the video or the documents the user got (none for links), and the ids of the
        messages that show them."""
        urls = [item["url"] for item in files]
        try:
            with telegram_errors(attempt):
                if output == "video" or all(fits_photo(item) for item in files):
                    try:
                        return await self._as_media(
                            chat_id, output, files, caption, buttons, attempt
                        )
                    except (TelegramBadRequest, FileTooLarge) as exc:
                        if output == "video" or not refused_as_photo(exc):
                            raise
                        log.info("result for chat %s is no photo (%s): a file", chat_id, exc)
                return await self._documents(chat_id, urls, caption, buttons, attempt)
        except FileTooLarge:
            return await self._links(chat_id, urls, caption, buttons, attempt)

    async def send_text(
        self, chat_id: int, text: str, *, attempt: int, replace_message_id: int | None = None
    ) -> None:
        """A notice: edits `replace_message_id` into it when possible, else sends it anew."""
        with telegram_errors(attempt):
            if replace_message_id is not None:
                with contextlib.suppress(TelegramBadRequest):
                    await self.outbox.notice.edit_message_text(
                        text, chat_id=chat_id, message_id=replace_message_id
                    )
                    return
            await self.outbox.notice.send_message(chat_id, text)

    async def _as_media(
        self,
        chat_id: int,
        output: Output,
        files: list[dict[str, Any]],
        caption: str,
        buttons: InlineKeyboardMarkup,
        attempt: int,
    ) -> Sent:
        """Photos or the video: by URL when Telegram fetches that size, else uploaded."""
        urls = [item["url"] for item in files]
        url_cap, upload_cap = (
            (URL_FETCH_CAP, OTHER_UPLOAD_CAP)
            if output == "video"
            else (PHOTO_URL_CAP, PHOTO_UPLOAD_CAP)
        )
        if max(int(item.get("file_size") or 0) for item in files) <= url_cap:
            try:
                return await self._media(chat_id, output, urls, caption, buttons)
            except TelegramBadRequest as exc:
                if any(marker in exc.message for marker in (*UNREACHABLE, *NOT_A_PHOTO)):
                    raise
                log.info("Telegram refused a result URL (%s); uploading", exc.message)
        async with self._uploads(urls, upload_cap, attempt) as uploads:
            return await self._media(chat_id, output, uploads, caption, buttons)

    async def _documents(
        self,
        chat_id: int,
        urls: list[str],
        caption: str,
        buttons: InlineKeyboardMarkup,
        attempt: int,
    ) -> Sent:
        """Uploaded, each with a preview: Telegram fetches documents by URL only when they
        are GIF, PDF or ZIP. One message per job as for a photo; an album's buttons follow."""
        async with self._uploads(urls, OTHER_UPLOAD_CAP, attempt) as uploads:
            thumbnails = [await self._thumbnail(upload) for upload in uploads]
            if len(uploads) == 1:
                message = await self.outbox.result.send_document(
                    chat_id,
                    uploads[0],
                    thumbnail=thumbnails[0],
                    caption=caption,
                    reply_markup=buttons,
                )
                return _document_ids([message])
            pairs = list(zip(uploads, thumbnails, strict=True))[:ALBUM_LIMIT]
            album = await self.outbox.result.send_media_group(
                chat_id, [InputMediaDocument(media=file, thumbnail=thumb) for file, thumb in pairs]
            )
        await self._album_buttons(chat_id, caption, buttons)
        return _document_ids(album)

    async def _thumbnail(self, upload: FSInputFile) -> BufferedInputFile | None:
        async with self._previews:
            data = await asyncio.to_thread(preview, Path(upload.path))
        return None if data is None else BufferedInputFile(data, "preview.jpg")

    async def _media(
        self,
        chat_id: int,
        output: Output,
        media: Sequence[str | FSInputFile],
        caption: str,
        buttons: InlineKeyboardMarkup,
    ) -> Sent:
        if output == "video":
            message = await self.outbox.result.send_video(
                chat_id, media[0], caption=caption, reply_markup=buttons, supports_streaming=True
            )
            videos = [message.video.file_id] if message.video else []
            return Sent(videos, ["video"] * len(videos), [message.message_id])
        if len(media) == 1:
            message = await self.outbox.result.send_photo(
                chat_id, media[0], caption=caption, reply_markup=buttons
            )
            return _photo_ids([message])
        album = await self.outbox.result.send_media_group(
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
            await self.outbox.follow_up.send_message(chat_id, caption, reply_markup=buttons)
        except (RetryLater, TelegramAPIError) as exc:
            log.info("buttons after an album to chat %s not sent: %s", chat_id, exc)

    @contextlib.asynccontextmanager
    async def _uploads(
        self, urls: list[str], cap: int, attempt: int
    ) -> AsyncIterator[list[FSInputFile]]:
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
    ) -> Sent:
        """Too big to upload: the user still gets the file, as links."""
        links = "\n".join(f'<a href="{html.escape(url)}">{html.escape(url)}</a>' for url in urls)
        with telegram_errors(attempt):
            message = await self.outbox.result.send_message(
                chat_id, f"{caption}\n\n{links}", reply_markup=buttons
            )
        return Sent([], [], [message.message_id])


def _photo_ids(messages: Sequence[Message]) -> Sent:
    shown = [message for message in messages if message.photo]
    file_ids = [m.photo[-1].file_id for m in shown]  # type: ignore[index]
    return Sent(file_ids, ["photo"] * len(shown), [m.message_id for m in shown])


def _document_ids(messages: Sequence[Message]) -> Sent:
    shown = [message for message in messages if message.document]
    file_ids = [m.document.file_id for m in shown]  # type: ignore[union-attr]
    return Sent(file_ids, ["document"] * len(shown), [m.message_id for m in shown])
