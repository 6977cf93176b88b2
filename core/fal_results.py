"""Recording what fal's webhook reports: the result (or error) lands on the job, and the
deliver task is enqueued.

fal retries its webhook and may send it more than once; the conditional state move makes
every copy after the first a no-op. The job id comes in our own webhook URL, so even a job
that was submitted twice (a crash between submit and saving the request id) is found.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.fal_client import FalWebhook
from core.jobs import get_job, move
from core.metrics import JOBS_FINISHED, STAGE_SECONDS
from core.models import Job, JobStatus, utcnow
from core.queue import enqueue_deliver

log = logging.getLogger(__name__)


class Recorded(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    UNKNOWN_JOB = "unknown_job"
    IGNORED = "ignored"


async def _find_job(session: AsyncSession, job_id: str | None, request_id: str) -> Job | None:
    if job_id:
        return await get_job(session, job_id)
    return await session.scalar(select(Job).where(Job.fal_request_id == request_id))


async def record_fal_result(
    sessions: async_sessionmaker[AsyncSession],
    redis: ArqRedis,
    webhook: FalWebhook,
    job_id: str | None,
) -> Recorded:
    async with sessions() as session:
        job = await _find_job(session, job_id, webhook.request_id)
        if job is None:
            log.warning("fal webhook for unknown job %s (request %s)", job_id, webhook.request_id)
            return Recorded.UNKNOWN_JOB
        request: dict[str, Any] = (
            {} if job.fal_request_id else {"fal_request_id": webhook.request_id}
        )
        if webhook.status == "OK":
            moved = await move(
                session, job.id, JobStatus.COMPLETED, result=webhook.payload, **request
            )
        elif webhook.status == "ERROR":
            moved = await move(
                session,
                job.id,
                JobStatus.FAILED,
                only_from=(JobStatus.QUEUED, JobStatus.SUBMITTED),
                error=webhook.error_type or "fal_error",
                error_detail=(webhook.error or "")[:2000],
                **request,
            )
        else:
            return Recorded.IGNORED
    if not moved:
        return Recorded.DUPLICATE
    _observe(job, webhook.status)
    try:
        await enqueue_deliver(redis, job.id, job.kind)
    except RedisError:
        log.warning("could not enqueue delivery of job %s; the sweeper will", job.id)
    return Recorded.ACCEPTED


def _observe(job: Job, status: str) -> None:
    if status == "ERROR":
        JOBS_FINISHED.labels(job.kind, "fal_error").inc()
    if job.submitted_at:
        STAGE_SECONDS.labels(job.kind, "fal").observe((utcnow() - job.submitted_at).total_seconds())
