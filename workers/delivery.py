"""Delivering a finished job to its chat: the result with its buttons, or the reason it failed.

Runs at least once per job: a job that is no longer `completed` is not sent again, and a
failure notice is claimed in the database before it is sent, so it goes out at most once.
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram.exceptions import TelegramAPIError
from sqlalchemy import update

from bot.job_face import caption, failure_text, remove_status, result_keyboard
from core.fal_client import FalError, FalRetryableError
from core.jobs import get_job, move, set_fields
from core.metrics import JOBS_FINISHED, STAGE_SECONDS
from core.models import Job, JobStatus, utcnow
from core.results import media_files, output_of
from core.retry import RetryLater, backoff
from core.telegram_send import Undeliverable
from workers.services import Services

log = logging.getLogger(__name__)


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
    job.result = result
    return result


async def _deliver_result(services: Services, job: Job, attempt: int) -> None:
    result = await _result_of(services, job, attempt)
    output = output_of(job, result)
    files = media_files(output, result)
    if not files:
        await _fail_and_notify(services, job, "no_media_generated", attempt)
        return
    try:
        file_ids = await services.sender.send_result(
            job.chat_id,
            output,
            files,
            caption=caption(job),
            buttons=result_keyboard(job.id, job.language, output),
            attempt=attempt,
        )
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
            result={**result, "telegram_file_ids": file_ids},
        )
    if moved:
        _observe_delivered(job)
    await remove_status(services.resources.bot, job)


def _observe_delivered(job: Job) -> None:
    now = utcnow()
    if job.completed_at:
        STAGE_SECONDS.labels(job.kind, "delivery").observe((now - job.completed_at).total_seconds())
    STAGE_SECONDS.labels(job.kind, "total").observe((now - job.created_at).total_seconds())
    JOBS_FINISHED.labels(job.kind, "delivered").inc()


async def _fail_and_notify(services: Services, job: Job, error: str, attempt: int) -> None:
    async with services.resources.sessions() as session:
        moved = await move(session, job.id, JobStatus.FAILED, error=error)
    if moved:
        JOBS_FINISHED.labels(job.kind, error).inc()
        job.error = error
        await _notify_failure(services, job, attempt)


async def _set_notified(services: Services, job: Job, notified: bool) -> bool:
    """Claim (or give back) the right to send this job's failure notice."""
    async with services.resources.sessions() as session:
        result = await session.execute(
            update(Job)
            .where(
                Job.id == job.id,
                Job.notified_at.is_(None) if notified else Job.notified_at.is_not(None),
            )
            .values(notified_at=utcnow() if notified else None)
        )
        await session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def _notify_failure(services: Services, job: Job, attempt: int) -> None:
    """Tell the user why, once: in the status message if there is one, else a new message."""
    if not await _set_notified(services, job, True):
        return
    text = failure_text(job)
    try:
        await services.sender.send_text(
            job.chat_id, text, attempt=attempt, replace_message_id=job.status_message_id
        )
    except RetryLater:
        await _set_notified(services, job, False)
        raise
    except (Undeliverable, TelegramAPIError) as exc:
        log.info("failure notice for job %s not sent: %s", job.id, exc)
