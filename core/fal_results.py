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
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import lifecycle
from core.fal_client import FalWebhook
from core.jobs import get_job, job_of_request
from core.models import Job
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
    return await job_of_request(session, request_id)


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
    request: dict[str, Any] = {} if job.fal_request_id else {"fal_request_id": webhook.request_id}
    if webhook.status == "OK":
        moved = await lifecycle.completed(sessions, job, webhook.payload, **request)
    elif webhook.status == "ERROR":
        error = webhook.error_type or "fal_error"
        moved = await lifecycle.fail(
            sessions, job, error, webhook.error or "", by_fal=True, **request
        )
    else:
        return Recorded.IGNORED
    if not moved:
        return Recorded.DUPLICATE
    try:
        await enqueue_deliver(redis, job.id, job.kind)
    except RedisError:
        log.warning("could not enqueue delivery of job %s; the sweeper will", job.id)
    return Recorded.ACCEPTED
