"""Submitting a queued job to fal's queue, with our webhook to call back.

Runs at least once per job (arq): a job that is no longer queued is left alone, and the job
id rides in the webhook URL so even a double submission finds its job. A job that starts
from a user's photo first moves that photo to fal's storage (once: the URL is kept).
"""

from __future__ import annotations

import logging
from typing import Any

from bot.job_face import show_progress
from core import lifecycle
from core.catalog import MAX_INPUT_SIDE, ModelSpec, catalog
from core.fal_binding import job_webhook_url
from core.fal_client import FalError, FalFinalError, FalRetryableError
from core.jobs import get_job
from core.metrics import FAL_CALLS
from core.models import Job, JobStatus, utcnow
from core.photos import PhotoLimits, PhotoRejected, photo_to_fal
from core.queue import enqueue_deliver
from core.retry import RetryLater, backoff
from workers.services import Services

log = logging.getLogger(__name__)


async def submit_job(services: Services, job_id: str, *, attempt: int, last_attempt: bool) -> None:
    resources = services.resources
    async with resources.sessions() as session:
        job = await get_job(session, job_id)
    if job is None or job.status != JobStatus.QUEUED:
        return
    model = catalog().find(job.model)
    if model is None:
        await fail_job(services, job, "model_unavailable", job.model)
        return
    try:
        options = await _with_input_photo(services, job, model)
        submission = await services.fal.submit(
            job.model,
            model.arguments(job.prompt, options),
            webhook_url=job_webhook_url(resources.settings, job.id),
        )
    except PhotoRejected as rejected:
        await fail_job(services, job, f"photo_{rejected.reason}")
        return
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
    check_at = utcnow() + catalog().modes[model.mode].check_after
    if not await lifecycle.submitted(resources.sessions, job, submission, check_at=check_at):
        await _cancel_if_cancelled(services, job.id, submission.cancel_url)
        return
    position = submission.queue_position or 0
    key, values = (
        ("status_position", {"position": position}) if position else ("status_generating", {})
    )
    await show_progress(resources.bot, job, key, **values)


async def _cancel_if_cancelled(services: Services, job_id: str, cancel_url: str) -> None:
    """The user cancelled while we were submitting: the request we just made is nobody's."""
    async with services.resources.sessions() as session:
        job = await get_job(session, job_id)
    if job is not None and job.status == JobStatus.CANCELLED:
        try:
            await services.fal.cancel(cancel_url)
        except FalError as exc:
            log.info("fal did not cancel job %s: %s", job_id, exc)


async def _with_input_photo(services: Services, job: Job, model: ModelSpec) -> dict[str, Any]:
    """The job's options with `image_url` set, uploading the user's Telegram photo if needed."""
    options = dict(job.options)
    if model.image_key is None or options.get("image_url"):
        return options
    resources = services.resources
    limits = PhotoLimits(
        max_bytes=catalog().modes[model.mode].max_input_bytes, max_side=MAX_INPUT_SIDE
    )
    options["image_url"] = await photo_to_fal(
        resources.bot, resources.http, services.fal, file_id=options["image_file_id"], limits=limits
    )
    await lifecycle.record(resources.sessions, job, options=options)
    return options


async def fail_job(services: Services, job: Job, error: str, detail: str = "") -> bool:
    """End a live job as failed (`lifecycle.fail`) and have the user told (by the deliver
    task)."""
    moved = await lifecycle.fail(services.resources.sessions, job, error, detail)
    if moved:
        await enqueue_deliver(services.resources.redis, job.id, job.kind)
    return moved
