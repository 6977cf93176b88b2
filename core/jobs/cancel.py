"""Cancelling a job at the user's request.

The database decides. A job fal never got (queued, no submit started) is cancelled and
refunded at once. One whose submit may have reached fal is only marked as cancel-requested:
fal may already be running it, and a running request can finish and be billed, so the worker
asks fal (`workers/cancellation.py`) and fal's answers decide: refunded when fal confirms it
never ran, delivered and charged when its result comes anyway.
"""

from __future__ import annotations

from enum import StrEnum

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.domain.models import Job, JobStatus
from core.jobs import lifecycle
from core.jobs.queue import CANCEL, queue_of


class Cancelled(StrEnum):
    NOW = "now"
    """Cancelled and refunded: fal never got it (or never ran it), now or before."""
    REQUESTED = "requested"
    """fal may be running it: asked to stop; its answer decides who pays."""
    TOO_LATE = "too_late"
    """The result had come, or the job was over."""


async def cancel_job(
    sessions: async_sessionmaker[AsyncSession], redis: ArqRedis, job: Job
) -> Cancelled:
    """A second tap, or a run of the handler again, asks again (arq keeps one cancel task);
    Redis failing here fails the handler, which is tried again."""
    if job.status == JobStatus.CANCELLED:
        return Cancelled.NOW  # by an earlier tap, or by this one in an earlier run
    if job.status not in (JobStatus.QUEUED, JobStatus.SUBMITTED):
        return Cancelled.TOO_LATE
    if job.status == JobStatus.QUEUED and await lifecycle.cancel(sessions, job, unsent=True):
        return Cancelled.NOW
    if job.cancel_requested_at is None and not await lifecycle.request_cancel(sessions, job):
        return Cancelled.TOO_LATE
    await redis.enqueue_job(
        CANCEL, job.id, _job_id=f"{CANCEL}:{job.id}", _queue_name=queue_of(job.mode)
    )
    return Cancelled.REQUESTED
