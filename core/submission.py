"""Submitting a queued job to fal's queue, with our webhook to call back.

Runs at least once per job (arq): a job that is no longer queued is left alone, and the job
id rides in the webhook URL so even a double submission finds its job.
"""

from __future__ import annotations

import logging
from typing import Any

from core.catalog import catalog
from core.fal_client import FalFinalError, FalRetryableError
from core.jobs import get_job, move
from core.metrics import FAL_CALLS, JOBS_FINISHED, STAGE_SECONDS
from core.models import Job, JobStatus, utcnow
from core.progress import show_progress
from core.queue import enqueue_deliver
from core.retry import RetryLater, backoff
from core.services import Services

log = logging.getLogger(__name__)


def fal_arguments(job: Job) -> dict[str, Any]:
    """The model's input: catalog defaults, then the job's options, then its prompt."""
    model = catalog().model(job.model)
    return {**model.defaults, **job.options, "prompt": job.prompt}


async def submit_job(services: Services, job_id: str, *, attempt: int, last_attempt: bool) -> None:
    resources = services.resources
    async with resources.sessions() as session:
        job = await get_job(session, job_id)
    if job is None or job.status != JobStatus.QUEUED:
        return
    webhook_url = f"{resources.settings.fal_webhook_url}?job={job.id}"
    try:
        submission = await services.fal.submit(
            job.model, fal_arguments(job), webhook_url=webhook_url
        )
    except FalRetryableError as exc:
        FAL_CALLS.labels("submit", "retryable_error").inc()
        if not last_attempt:
            raise RetryLater(backoff(attempt), f"fal submit: {exc}") from None
        await fail_job(services, job, "fal_unavailable", str(exc))
        return
    except FalFinalError as exc:
        FAL_CALLS.labels("submit", "final_error").inc()
        await fail_job(services, job, exc.error_type or "fal_rejected", str(exc))
        return
    FAL_CALLS.labels("submit", "ok").inc()
    check_after = catalog().modes[job.kind].check_after  # type: ignore[index]
    async with resources.sessions() as session:
        moved = await move(
            session,
            job.id,
            JobStatus.SUBMITTED,
            fal_request_id=submission.request_id,
            fal_status_url=submission.status_url,
            fal_response_url=submission.response_url,
            fal_cancel_url=submission.cancel_url,
            check_at=utcnow() + check_after,
        )
    if moved:
        STAGE_SECONDS.labels(job.kind, "queued").observe(
            (utcnow() - job.created_at).total_seconds()
        )
        await show_progress(resources.bot, services.limiter, job, "status_generating")


async def fail_job(services: Services, job: Job, error: str, detail: str = "") -> None:
    """End a live job as failed and have the user told (by the deliver task)."""
    async with services.resources.sessions() as session:
        moved = await move(
            session, job.id, JobStatus.FAILED, error=error, error_detail=detail[:2000]
        )
    if moved:
        log.info("job %s failed: %s", job.id, error)
        JOBS_FINISHED.labels(job.kind, error).inc()
        await enqueue_deliver(services.resources.redis, job.id, job.kind)
