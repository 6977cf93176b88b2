"""Delivering a finished job to its chat: the result by URL (or uploaded when Telegram cannot
fetch it), or the reason it failed.

Runs at least once per job: a job that is no longer `completed` is not sent again, and a
failure notice is claimed in the database before it is sent, so it goes out at most once.
"""

from __future__ import annotations

import contextlib
import html
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import FSInputFile, InputMediaPhoto, Message
from sqlalchemy import update

from bot.texts import error_text, t
from core.catalog import Output, catalog
from core.fal_client import FalError, FalRetryableError
from core.files import FileTooLarge, downloaded
from core.jobs import get_job, move, set_fields
from core.metrics import JOBS_FINISHED, STAGE_SECONDS, TELEGRAM_CALLS, TELEGRAM_THROTTLED
from core.models import Job, JobStatus, utcnow
from core.progress import remove_status
from core.retry import RetryLater, backoff
from core.services import Services

log = logging.getLogger(__name__)

CAPTION_LIMIT = 1024
PHOTO_UPLOAD_CAP = 10 * 1024 * 1024
OTHER_UPLOAD_CAP = 50 * 1024 * 1024
#: Telegram's ways of saying "this chat will never receive anything from us".
UNREACHABLE = ("chat not found", "user is deactivated", "bot was blocked", "PEER_ID_INVALID")


class Undeliverable(Exception):
    """The chat cannot receive messages (blocked the bot, deleted account)."""


def media_urls(output: Output, result: dict[str, Any]) -> list[str]:
    """The URLs of the files a model returned, by the shape its catalog entry declares."""
    if output == "images":
        return [image["url"] for image in result.get("images") or [] if image.get("url")]
    item = result.get(output) or {}
    return [item["url"]] if item.get("url") else []


def caption(job: Job) -> str:
    title = html.escape(catalog().model(job.model).title)
    room = CAPTION_LIMIT - len(t(job.language, "caption", prompt="", model=title)) - 1
    prompt = job.prompt if len(job.prompt) <= room else job.prompt[: room - 1] + "…"
    return t(job.language, "caption", prompt=html.escape(prompt), model=title)


async def deliver_job(services: Services, job_id: str, *, attempt: int) -> None:
    async with services.resources.sessions() as session:
        job = await get_job(session, job_id)
    if job is None:
        return
    if job.status == JobStatus.COMPLETED:
        await _deliver_result(services, job, attempt)
    elif job.status == JobStatus.FAILED and job.notified_at is None:
        await _notify_failure(services, job, attempt)


async def _result_of(services: Services, job: Job, attempt: int) -> dict[str, Any]:
    """The stored result, or, when fal's webhook came without a payload, fetched once."""
    if job.result is not None:
        return job.result
    try:
        result = await services.fal.result(job.fal_response_url or "")
    except FalRetryableError as exc:
        raise RetryLater(backoff(attempt), f"fal result: {exc}") from None
    except FalError:
        return {}
    async with services.resources.sessions() as session:
        await set_fields(session, job.id, result=result)
    return result


async def _deliver_result(services: Services, job: Job, attempt: int) -> None:
    output = catalog().model(job.model).output
    urls = media_urls(output, await _result_of(services, job, attempt))
    if not urls:
        await _fail_and_notify(services, job, "no_media_generated", attempt)
        return
    await _acquire(services, job.chat_id)
    try:
        file_ids = await _send(services, job, output, urls, attempt)
    except Undeliverable as exc:
        async with services.resources.sessions() as session:
            if await move(
                session,
                job.id,
                JobStatus.FAILED,
                error="undeliverable",
                error_detail=str(exc),
                notified_at=utcnow(),
            ):
                JOBS_FINISHED.labels(job.kind, "undeliverable").inc()
        return
    async with services.resources.sessions() as session:
        moved = await move(
            session,
            job.id,
            JobStatus.DELIVERED,
            notified_at=utcnow(),
            result={**(job.result or {}), "telegram_file_ids": file_ids},
        )
    if moved:
        now = utcnow()
        if job.completed_at:
            STAGE_SECONDS.labels(job.kind, "delivery").observe(
                (now - job.completed_at).total_seconds()
            )
        STAGE_SECONDS.labels(job.kind, "total").observe((now - job.created_at).total_seconds())
        JOBS_FINISHED.labels(job.kind, "delivered").inc()
    await remove_status(services.resources.bot, job)


async def _acquire(services: Services, chat_id: int) -> None:
    try:
        await services.limiter.acquire(chat_id)
    except RetryLater:
        TELEGRAM_THROTTLED.labels("limiter").inc()
        raise


async def _send(
    services: Services, job: Job, output: Output, urls: list[str], attempt: int
) -> list[str]:
    """Send by URL; if Telegram cannot fetch it, stream it through here and upload."""
    bot = services.resources.bot
    method = _method_name(output, urls)
    try:
        with _telegram_errors(method, attempt):
            try:
                return await _send_media(bot, job, output, urls)
            except TelegramBadRequest as exc:
                if any(marker in exc.message for marker in UNREACHABLE):
                    raise
                log.info("Telegram refused the URL for job %s (%s); uploading", job.id, exc.message)
            async with _uploads(services, output, urls) as files:
                return await _send_media(bot, job, output, files)
    except FileTooLarge:
        return await _send_links(bot, job, urls)


def _method_name(output: Output, urls: Sequence[object]) -> str:
    if output == "video":
        return "sendVideo"
    return "sendPhoto" if len(urls) == 1 else "sendMediaGroup"


@contextlib.contextmanager
def _telegram_errors(method: str, attempt: int) -> Any:
    """Translate Telegram's answers into what the task does next."""
    try:
        yield
    except TelegramRetryAfter as exc:
        TELEGRAM_CALLS.labels(method, "429").inc()
        TELEGRAM_THROTTLED.labels("telegram").inc()
        raise RetryLater(exc.retry_after, "telegram 429") from None
    except TelegramForbiddenError as exc:
        TELEGRAM_CALLS.labels(method, "forbidden").inc()
        raise Undeliverable(exc.message) from None
    except TelegramBadRequest as exc:
        TELEGRAM_CALLS.labels(method, "bad_request").inc()
        if any(marker in exc.message for marker in UNREACHABLE):
            raise Undeliverable(exc.message) from None
        raise
    except (TelegramServerError, TelegramNetworkError) as exc:
        TELEGRAM_CALLS.labels(method, "retryable_error").inc()
        raise RetryLater(backoff(attempt), f"telegram: {exc}") from None
    else:
        TELEGRAM_CALLS.labels(method, "ok").inc()


async def _send_media(
    bot: Bot, job: Job, output: Output, media: Sequence[str | FSInputFile]
) -> list[str]:
    text = caption(job)
    if output == "video":
        message = await bot.send_video(job.chat_id, media[0], caption=text, supports_streaming=True)
        return [message.video.file_id] if message.video else []
    if len(media) == 1:
        return _photo_ids([await bot.send_photo(job.chat_id, media[0], caption=text)])
    album = [
        InputMediaPhoto(media=item, caption=text if index == 0 else None)
        for index, item in enumerate(media[:10])
    ]
    return _photo_ids(await bot.send_media_group(job.chat_id, album))


def _photo_ids(messages: Sequence[Message]) -> list[str]:
    return [message.photo[-1].file_id for message in messages if message.photo]


@contextlib.asynccontextmanager
async def _uploads(
    services: Services, output: Output, urls: list[str]
) -> AsyncIterator[list[FSInputFile]]:
    cap = OTHER_UPLOAD_CAP if output == "video" else PHOTO_UPLOAD_CAP
    async with contextlib.AsyncExitStack() as stack:
        paths = [
            await stack.enter_async_context(downloaded(services.resources.http, url, cap=cap))
            for url in urls
        ]
        yield [
            FSInputFile(path, filename=url.rsplit("/", 1)[-1])
            for path, url in zip(paths, urls, strict=True)
        ]


async def _send_links(bot: Bot, job: Job, urls: list[str]) -> list[str]:
    """Too big to upload: the user still gets the file, as links."""
    links = "\n".join(html.escape(url) for url in urls)
    await bot.send_message(job.chat_id, f"{caption(job)}\n\n{links}")
    return []


async def _fail_and_notify(services: Services, job: Job, error: str, attempt: int) -> None:
    async with services.resources.sessions() as session:
        moved = await move(session, job.id, JobStatus.FAILED, error=error)
    if moved:
        JOBS_FINISHED.labels(job.kind, error).inc()
        job.error = error
        await _notify_failure(services, job, attempt)


async def _claim_notice(services: Services, job: Job, claim: bool) -> bool:
    async with services.resources.sessions() as session:
        result = await session.execute(
            update(Job)
            .where(
                Job.id == job.id,
                (Job.notified_at.is_(None) if claim else Job.notified_at.is_not(None)),
            )
            .values(notified_at=utcnow() if claim else None)
        )
        await session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def _notify_failure(services: Services, job: Job, attempt: int) -> None:
    """Tell the user why, once: in the status message if there is one, else a new message."""
    if not await _claim_notice(services, job, claim=True):
        return
    bot, text = services.resources.bot, error_text(job.language, job.error)
    try:
        await _acquire(services, job.chat_id)
        with _telegram_errors("sendMessage", attempt):
            if job.status_message_id is not None:
                with contextlib.suppress(TelegramBadRequest):
                    await bot.edit_message_text(
                        text, chat_id=job.chat_id, message_id=job.status_message_id
                    )
                    return
            await bot.send_message(job.chat_id, text)
    except RetryLater:
        await _claim_notice(services, job, claim=False)
        raise
    except (Undeliverable, TelegramAPIError) as exc:
        log.info("failure notice for job %s not sent: %s", job.id, exc)
