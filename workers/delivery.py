"""Delivering a finished job to its chat: the result with its buttons, or the reason it failed.

Runs at least once per job: a job that is no longer `completed` is not sent again, and a
failure notice is claimed in the database before it is sent, so it goes out at most once.
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram.exceptions import TelegramAPIError

from bot.job_face import caption, failure_text, remove_status, result_keyboard
from core import lifecycle
from core.fal_client import FalError, FalRetryableError
from core.jobs import get_job
from core.models import Job, JobStatus
from core.results import media_files, output_of
from core.retry import RetryLater, backoff
from core.telegram_send import Undeliverable
from core.url_guard import RefusedURL
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
    await lifecycle.record(services.resources.sessions, job, result=result)
    job.result = result
    return result


async def _deliver_result(services: Services, job: Job, attempt: int) -> None:
    sessions = services.resources.sessions
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
        await lifecycle.fail(sessions, job, "undeliverable", str(exc), notified=True)
        return
    except RefusedURL as exc:
        log.warning("job %s: result URL refused: %s", job.id, exc)
        await _fail_and_notify(services, job, "result_url_refused", attempt, str(exc))
        return
    await lifecycle.delivered(sessions, job, {**result, "telegram_file_ids": file_ids})
    await remove_status(services.resources.bot, job)


async def _fail_and_notify(
    services: Services, job: Job, error: str, attempt: int, detail: str = ""
) -> None:
    if await lifecycle.fail(services.resources.sessions, job, error, detail):
        job.error = error
        await _notify_failure(services, job, attempt)


async def _notify_failure(services: Services, job: Job, attempt: int) -> None:
    """Tell the user why, once: in the status message if there is one, else a new message."""
    sessions = services.resources.sessions
    if not await lifecycle.claim_notice(sessions, job):
        return
    text = failure_text(job)
    try:
        await services.sender.send_text(
            job.chat_id, text, attempt=attempt, replace_message_id=job.status_message_id
        )
    except RetryLater:
        await lifecycle.release_notice(sessions, job)
        raise
    except (Undeliverable, TelegramAPIError) as exc:
        log.info("failure notice for job %s not sent: %s", job.id, exc)
