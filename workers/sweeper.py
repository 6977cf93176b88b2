"""The sweeper: the safety net under the push-only pipeline, run by one worker every minute.

It finds jobs the normal path should have moved on by now and nudges each once: re-enqueue a
queued or completed job (its arq job may have been lost with Redis), ask fal once about a
submitted job whose webhook is late, and fail what is past its deadline. It is the only
place kadr ever asks fal for a status.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from core import broadcasts, lifecycle
from core.fal_client import FalError, FalFinalError, FalWebhook
from core.fal_results import record_fal_result
from core.jobs import jobs_to_sweep
from core.metrics import FAL_CALLS
from core.models import Job, JobStatus, utcnow
from core.queue import enqueue_broadcast, enqueue_deliver, enqueue_submit
from workers.services import Services
from workers.submission import fail_job

log = logging.getLogger(__name__)


async def sweep(services: Services, *, now: datetime | None = None) -> int:
    """Nudge every overdue job once; returns how many were looked at."""
    now = now or utcnow()
    stale_before = now - timedelta(seconds=services.resources.settings.SWEEP_STALE_AFTER)
    async with services.resources.sessions() as session:
        jobs = await jobs_to_sweep(session, now=now, stale_before=stale_before)
    for job in jobs:
        try:
            await _nudge(services, job, now)
        except Exception:
            log.exception("sweeping job %s failed; next sweep tries again", job.id)
    if jobs:
        log.info("swept %d jobs", len(jobs))
    for broadcast_id in await broadcasts.running(services.resources.sessions):
        await enqueue_broadcast(services.resources.redis, broadcast_id)
    return len(jobs)


async def _nudge(services: Services, job: Job, now: datetime) -> None:
    redis = services.resources.redis
    if job.status == JobStatus.QUEUED:
        if job.deadline_at <= now:
            await fail_job(services, job, "timeout")
        else:
            await enqueue_submit(redis, job.id, job.kind)
    elif job.status == JobStatus.SUBMITTED:
        await _ask_fal(services, job, now)
    else:
        await enqueue_deliver(redis, job.id, job.kind)


async def _ask_fal(services: Services, job: Job, now: datetime) -> None:
    """One status request; a finished request's result is recorded as if the webhook came."""
    fal = services.fal
    try:
        status = await fal.status(job.fal_status_url or "")
        FAL_CALLS.labels("status", "ok").inc()
        if status.completed:
            await _record(services, job, "OK", await fal.result(job.fal_response_url or ""))
            return
    except FalFinalError as exc:
        FAL_CALLS.labels("status", "final_error").inc()
        await _record(services, job, "ERROR", None, error_type=exc.error_type, error=str(exc))
        return
    except FalError as exc:
        FAL_CALLS.labels("status", "retryable_error").inc()
        log.info("fal status of job %s unknown: %s", job.id, exc)
    if job.deadline_at <= now:
        await _cancel_quietly(services, job)
        await fail_job(services, job, "timeout")
    else:
        await lifecycle.record(services.resources.sessions, job, check_at=job.deadline_at)


async def _record(
    services: Services, job: Job, status: str, payload: object, **error: str | None
) -> None:
    webhook = FalWebhook(
        request_id=job.fal_request_id or "", status=status, payload=payload, **error
    )
    resources = services.resources
    await record_fal_result(resources.sessions, resources.redis, webhook, job.id)


async def _cancel_quietly(services: Services, job: Job) -> None:
    if not job.fal_cancel_url:
        return
    try:
        await services.fal.cancel(job.fal_cancel_url)
    except FalError as exc:
        log.info("cancelling job %s at fal failed: %s", job.id, exc)
