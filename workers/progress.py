"""Refreshing a job's status message while it waits: where it stands and when its result
should come (`core/jobs/estimate.py`), every `refresh_every` seconds at most (5 in a private
chat, 15 in a group) until fal has finished it.

A refresh is the lowest of priorities: its edit goes with `outbox.progress`, only when a
send moment is free now and no result waits, and one whose text would not change is not
sent. Each tick queues the next one; the chain ends with the job's wait (its result came, it
failed or was cancelled, or its deadline passed).
"""

from __future__ import annotations

from bot.job_messages import (
    claim_refresh,
    progress_text,
    refresh_every,
    refreshed_lately,
    show_progress,
)
from core.domain.models import Job, JobStatus, utcnow
from core.jobs import estimate
from core.jobs.queries import get_job
from core.jobs.queue import enqueue_progress
from core.resources import Resources
from workers.services import Services

WAITING = (JobStatus.QUEUED, JobStatus.SUBMITTED)


async def refresh_status(resources: Resources, job: Job) -> None:
    """Show the job's current figures, if they changed and the job's refresh is due."""
    if job.status_message_id is None or await refreshed_lately(resources.redis, job):
        return
    figures = await estimate.figures(
        resources.redis,
        resources.limiter,
        job_id=job.id,
        mode=job.mode,
        model=job.model,
        submitted_at=job.submitted_at,
    )
    text = progress_text(job, figures)
    if await claim_refresh(resources.redis, job, text):
        await show_progress(resources.outbox, job, text)


async def keep_refreshing(resources: Resources, job: Job) -> None:
    """fal queued the job behind others: a longer wait than the launch expected, so its
    status message is refreshed from now on (a no-op when the first tick is already queued,
    which has the same id)."""
    if job.status_message_id is not None:
        every = refresh_every(job.chat_id)
        await enqueue_progress(resources.redis, job.id, job.mode, tick=1, delay=every)


async def progress_tick(services: Services, job_id: str, tick: int) -> None:
    resources = services.resources
    async with resources.sessions() as session:
        job = await get_job(session, job_id)
    if job is None or job.status not in WAITING or job.status_message_id is None:
        return
    if job.deadline_at <= utcnow():
        return
    await refresh_status(resources, job)
    every = refresh_every(job.chat_id)
    await enqueue_progress(resources.redis, job.id, job.mode, tick=tick + 1, delay=every)
