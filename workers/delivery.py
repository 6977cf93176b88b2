"""Delivering a finished job to its chat: the result with its buttons, or the reason it failed.

Runs at least once per job: a job that is no longer `completed` is not sent again, a result
Telegram took is looked up in its receipt before sending (a run that sent it but could not
move the job only finishes the move), and a failure notice is claimed in the database before
it is sent, so each goes out at most once. A delivery that keeps failing (a result Telegram
refuses, a chat that moved) does not run for ever: past `DELIVERY_ATTEMPTS` refusals, or past
`DELIVERY_WINDOW` after the result came with one refusal at least, the job fails as
`undeliverable` and the user is told. A result that was made is never given up for time
alone: one that waited out outages is still delivered.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from aiogram.exceptions import TelegramAPIError

from bot.job_messages import caption, failure_text, remove_status, result_keyboard
from core.domain.models import Job, JobStatus, utcnow
from core.fal.client import FalError, FalRetryableError
from core.infra.retry import RetryLater, backoff, is_outage
from core.infra.url_guard import RefusedURL
from core.jobs import lifecycle
from core.jobs.estimate import record_sent
from core.jobs.output import media_files, output_of
from core.jobs.queries import get_job
from core.telegram.receipts import Sent
from core.telegram.sender import Undeliverable
from workers.services import Services

log = logging.getLogger(__name__)

#: How long after its result came a job that Telegram refused may still be tried. Telegram's
#: pauses (429) and outages are not refusals: they do not end a delivery, however long.
DELIVERY_WINDOW = timedelta(minutes=15)
#: Refused deliveries (not waits for Telegram's limits, not outages) before a job is given
#: up: a result Telegram refuses every time would otherwise be re-enqueued for ever.
DELIVERY_ATTEMPTS = 10


async def deliver_job(services: Services, job_id: str, *, attempt: int) -> None:
    async with services.resources.sessions() as session:
        job = await get_job(session, job_id)
    if job is None:
        return
    if job.status == JobStatus.COMPLETED:
        await _deliver_in_window(services, job, attempt)
    elif job.status in (JobStatus.FAILED, JobStatus.CANCELLED) and job.notified_at is None:
        await _notify_failure(services, job, attempt)


def given_up(job: Job, now: datetime) -> bool:
    """Past its delivery window after Telegram refused it at least once."""
    return (
        job.delivery_attempts > 0
        and job.completed_at is not None
        and job.completed_at + DELIVERY_WINDOW <= now
    )


async def _deliver_in_window(services: Services, job: Job, attempt: int) -> None:
    """Deliver, counting each refusal; the last one allowed ends the job instead."""
    if given_up(job, utcnow()):
        await _fail_and_notify(services, job, "undeliverable", attempt, "delivery window passed")
        return
    try:
        await _deliver_result(services, job, attempt)
    except RetryLater:
        raise
    except Exception as exc:
        if is_outage(exc):
            raise
        failures = await lifecycle.add_failed_delivery(services.resources.sessions, job)
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
    sent = await services.receipts.of(job.id)
    if sent is None:
        sent = await _send_result(services, job, attempt)
        if sent is None:
            return
        await services.receipts.keep(job.id, sent)
        await record_sent(services.resources.redis)
    result = {
        **(job.result or {}),
        "telegram_file_ids": sent.file_ids,
        "telegram_file_kinds": sent.kinds,
    }
    await lifecycle.mark_delivered(
        services.resources.sessions, job, result, message_ids=sent.message_ids
    )
    await remove_status(services.resources.outbox.notice, job)


async def _send_result(services: Services, job: Job, attempt: int) -> Sent | None:
    """What Telegram gave for the sent result; None when the job ended instead."""
    result = await _result_of(services, job, attempt)
    output = output_of(job, result)
    files = media_files(output, result)
    if not files:
        await _fail_and_notify(services, job, "no_media_generated", attempt)
        return None
    try:
        return await services.sender.send_result(
            job.chat_id,
            output,
            files,
            caption=caption(job),
            buttons=result_keyboard(job, output),
            attempt=attempt,
        )
    except Undeliverable as exc:
        await lifecycle.fail(
            services.resources.sessions, job, "undeliverable", str(exc), notified=True
        )
        return None
    except RefusedURL as exc:
        log.warning("job %s: result URL refused: %s", job.id, exc)
        await _fail_and_notify(services, job, "result_url_refused", attempt, str(exc))
        return None


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
