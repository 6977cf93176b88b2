"""Recording what fal's webhook reports: the result (or error) lands on the job, and the
deliver task is enqueued.

fal retries its webhook and may send it more than once; the conditional state move makes
every copy after the first a no-op. The job id comes in our own webhook URL (its token
checked by the caller, `core/fal/webhook.py`), so even a job whose request id was never saved
(a crash between submit and saving it) is found. Once the job knows its request id, only
what fal reports about that request moves it: a result of another request, even one fal
signed and sent to this job's URL, changes nothing.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from sqlalchemy.exc import IntegrityError

from core.domain.models import Job, JobStatus
from core.fal.client import FalWebhook
from core.jobs import lifecycle
from core.jobs.estimate import record_fal_time
from core.jobs.queries import get_job
from core.jobs.queue import enqueue_deliver
from core.resources import Resources

log = logging.getLogger(__name__)


class Recorded(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    UNKNOWN_JOB = "unknown_job"
    IGNORED = "ignored"
    UNBOUND = "unbound"
    """About a request other than the job's: nothing changed."""


async def record_fal_result(resources: Resources, webhook: FalWebhook, job_id: str) -> Recorded:
    """A result is recorded without reading the job first (one statement, which also checks
    the request); only a webhook that did not move the job is looked into, to say why."""
    try:
        if webhook.status == "OK":
            moved = await lifecycle.mark_completed(
                resources.sessions, job_id, webhook.payload, request_id=webhook.request_id
            )
            if moved is not None:
                await _deliver(resources, job_id, moved.mode)
                if moved.at_fal is not None:
                    await record_fal_time(resources.redis, moved.model, moved.at_fal)
                return Recorded.ACCEPTED
        return await _record_other(resources, webhook, job_id)
    except IntegrityError:
        log.warning(
            "fal webhook for job %s names request %s, another job's: ignored",
            job_id,
            webhook.request_id,
        )
        return Recorded.UNBOUND


async def _record_other(resources: Resources, webhook: FalWebhook, job_id: str) -> Recorded:
    """A result that moved nothing, an error, or a status fal may add that we do not know."""
    sessions = resources.sessions
    async with sessions() as session:
        job = await get_job(session, job_id)
    if job is None:
        log.warning("fal webhook for unknown job %s (request %s)", job_id, webhook.request_id)
        return Recorded.UNKNOWN_JOB
    if job.fal_request_id and job.fal_request_id != webhook.request_id:
        log.warning(
            "fal webhook for job %s names request %s, not the job's %s: ignored",
            job.id,
            webhook.request_id,
            job.fal_request_id,
        )
        return Recorded.UNBOUND
    if webhook.status not in ("OK", "ERROR"):
        return Recorded.IGNORED
    if webhook.status == "ERROR" and job.status in (JobStatus.QUEUED, JobStatus.SUBMITTED):
        if not await _end_without_result(resources, job, webhook):
            return Recorded.DUPLICATE
        await _deliver(resources, job.id, job.mode)
        return Recorded.ACCEPTED
    if _awaits_delivery(job):
        await _deliver(resources, job.id, job.mode)  # a copy of one whose queueing failed
    return Recorded.DUPLICATE


def _awaits_delivery(job: Job) -> bool:
    """The job ended at fal, but its result or its notice has not reached the user yet."""
    return job.status == JobStatus.COMPLETED or (
        job.status in (JobStatus.FAILED, JobStatus.CANCELLED) and job.notified_at is None
    )


async def _end_without_result(resources: Resources, job: Job, webhook: FalWebhook) -> bool:
    """fal ran it and it failed, or stopped it as the user asked: either way refunded; a job
    the user cancelled ends cancelled, whatever fal's words for it."""
    if job.cancel_requested_at is not None:
        return await lifecycle.cancel(
            resources.sessions, job, request_id=webhook.request_id, notified=False
        )
    return await lifecycle.fail(
        resources.sessions,
        job,
        webhook.error_type or "fal_error",
        webhook.error or "",
        by_fal=True,
        request_id=webhook.request_id,
    )


async def _deliver(resources: Resources, job_id: str, mode: str) -> None:
    """Queued to come just before its turn to be sent: a flood of results reaches the workers
    in the order of their turns (core/telegram/limits.py). Redis failing here fails the
    webhook (5xx), as the database failing does: fal sends it again, and the copy queues the
    delivery of the job it finds completed (arq keeps one deliver task per job)."""
    delay = await resources.limiter.place_in_line()
    await enqueue_deliver(resources.redis, job_id, mode, delay=delay)
