"""Delivering a finished job to its chat: the result with its buttons, or the reason it failed.

Runs at least once per job: a job that is no longer `completed` is not sent again, and a
failure notice is claimed in the database before it is sent, so it goes out at most once.
A delivery that keeps failing (a result Telegram refuses, a chat that moved) does not run for
ever: past `DELIVERY_ATTEMPTS` failed tries or `DELIVERY_WINDOW` after the result came, the
job fails as `undeliverable` and the user is told.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from aiogram.exceptions import TelegramAPIError

from bot.job_face import caption, failure_text, remove_status, result_keyboard
from core import lifecycle
from core.fal_client import FalError, FalRetryableError
from core.jobs import get_job
from core.models import Job, JobStatus, utcnow
from core.results import media_files, output_of
from core.retry import RetryLater, backoff
from core.telegram_send import Undeliverable
from core.url_guard import RefusedURL
from workers.services import Services

log = logging.getLogger(__name__)

#: How long after its result came a job may still be delivered. Telegram pauses (429) and
#: outages wait within it; past it the result is not worth sending and the user is told.
DELIVERY_WINDOW = timedelta(minutes=15)
#: Failed deliveries (errors, not waits for Telegram's limits) before a job is given up: a
#: result Telegram refuses every time would otherwise be re-enqueued every minute for ever.
DELIVERY_ATTEMPTS = 10


async def deliver_job(services: Services, job_id: str, *, attempt: int) -> None:
    async with services.resources.sessions() as session:
        job = await get_job(session, job_id)
    if job is None:
        return
    if job.status == JobStatus.COMPLETED:
        await _deliver_in_window(services, job, attempt)
    elif job.status == JobStatus.FAILED and job.notified_at is None:
        await _notify_failure(services, job, attempt)


def past_delivery_window(job: Job, now: datetime) -> bool:
    return job.completed_at is not None and job.completed_at + DELIVERY_WINDOW <= now


async def _deliver_in_window(services: Services, job: Job, attempt: int) -> None:
    """Deliver, counting each failure; the last one allowed ends the job instead."""
    if past_delivery_window(job, utcnow()):
        await _fail_and_notify(services, job, "undeliverable", attempt, "delivery window passed")
        return
    try:
        await _deliver_result(services, job, attempt)
    except RetryLater:
        raise
    except Exception as exc:
        failures = await lifecycle.delivery_failed(services.resources.sessions, job)
        detail = f"{type(exc).__name__}: {exc}"
        if failures >= DELIVERY_ATTEMPTS:
            await _fail_and_notify(services, job, "undeliverable", attempt, detail)
            return
        log.warning("delivery %d of job %s failed: %s", failures, job.id, detail)
        raise RetryLater(backoff(failures), "delivery failed") from None


async def _result_of(services: Services, job: Job, attempt: int) -> dict[str, Any]:
    """The stored result, or, when fal's webhook came without a payload, fetched once."""
    if job.result is not None:
        return job.result
    if not job.fal_response_url:
        # The webhook beat the submit's own record of the request's URLs: they come soon.
        raise RetryLater(backoff(attempt), "fal result URL not known yet")
    try:
        result = await services.fal.result(job.fal_response_url)
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
            buttons=result_keyboard(job, output),
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
