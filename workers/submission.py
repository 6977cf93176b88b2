"""Submitting a queued job to fal's queue, with our webhook to call back.

Runs at least once per job (arq), and fal has no idempotency key, so a job reaches fal at
most once: the right to submit is taken in the database before the request goes out
(`lifecycle.start_submit`) and given back only when fal certainly did not get it (the
connection was refused, or fal answered with an error). After an ambiguous outcome — the
answer timed out or the connection dropped after sending, a 200 without the request's URLs,
the task cancelled mid-call (SIGTERM, arq's timeout), the process killed before the commit —
nothing is sent again: the webhook (the job id rides in its URL) completes the job, or the
sweeper fails it at its deadline. A job that starts from a user's photo first moves that
photo to fal's storage (once: the URL is kept). A job with the prompt helper on or a style
first settles the prompt fal gets (once: `prompt_sent` is kept): the helper's rewrite of the
user's words (`workers/prompt_helper.py`, bounded: the words go when it fails, and the
helper's price goes back), in the style's template.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from core.domain.catalog import MAX_INPUT_SIDE, ModelSpec, catalog
from core.domain.models import Job, JobStatus, utcnow
from core.fal.client import (
    FalError,
    FalFinalError,
    FalModelNotFound,
    FalOutcomeUnknown,
    FalSubmission,
)
from core.fal.photos import PhotoLimits, PhotoRejected, photo_to_fal
from core.fal.webhook import job_webhook_url
from core.infra.metrics import FAL_CALLS
from core.infra.retry import RetryLater, backoff
from core.jobs import estimate, lifecycle
from core.jobs.queries import get_job
from core.jobs.queue import enqueue_deliver
from workers.progress import keep_refreshing, refresh_status
from workers.prompt_helper import improved_prompt
from workers.services import Services

log = logging.getLogger(__name__)


async def submit_job(services: Services, job_id: str, *, attempt: int) -> None:
    resources = services.resources
    async with resources.sessions() as session:
        job = await get_job(session, job_id)
    if job is None or job.status != JobStatus.QUEUED or job.submit_started_at is not None:
        return
    model = catalog().find(job.model)
    if model is None:
        await fail_job(services, job, "model_unavailable", job.model)
        return
    try:
        options = await _with_input_photo(services, job, model)
    except PhotoRejected as rejected:
        await fail_job(services, job, f"photo_{rejected.reason}")
        return
    except FalError as exc:
        await _fal_refused(services, job, exc, attempt=attempt)
        return
    options = await _with_prompt(services, job, options)
    if not await lifecycle.start_submit(resources.sessions, job):
        return
    try:
        submission = await services.fal.submit(
            job.model,
            model.arguments(options.get("prompt_sent", job.prompt), options),
            webhook_url=job_webhook_url(resources.config, job.id),
        )
    except FalOutcomeUnknown as exc:
        FAL_CALLS.labels("submit", "unknown").inc()
        log.warning("fal may have job %s (%s); waiting for its webhook", job.id, exc)
        return
    except FalError as exc:
        await lifecycle.abandon_submit(resources.sessions, job)
        await _fal_refused(services, job, exc, attempt=attempt)
        return
    FAL_CALLS.labels("submit", "ok").inc()
    await _record_submission(services, job, model, submission)


async def _fal_refused(services: Services, job: Job, exc: FalError, *, attempt: int) -> None:
    """fal (or the way to it) certainly did not take the request: try later, within the
    job's deadline, or give up."""
    if isinstance(exc, FalModelNotFound):
        FAL_CALLS.labels("submit", "not_found").inc()
        await fail_job(services, job, "model_unavailable", str(exc))
        return
    if isinstance(exc, FalFinalError):
        FAL_CALLS.labels("submit", "final_error").inc()
        await fail_job(services, job, exc.error_type or "fal_rejected", str(exc))
        return
    FAL_CALLS.labels("submit", "retryable_error").inc()
    delay = backoff(attempt)
    if utcnow() + timedelta(seconds=delay) < job.deadline_at:
        raise RetryLater(delay, f"fal submit: {exc}") from None
    await fail_job(services, job, "fal_unavailable", str(exc))


async def _record_submission(
    services: Services, job: Job, model: ModelSpec, submission: FalSubmission
) -> None:
    resources = services.resources
    check_at = utcnow() + catalog().modes[model.mode].check_after
    if not await lifecycle.mark_submitted(resources.sessions, job, submission, check_at=check_at):
        await _cancel_if_orphaned(services, job.id, submission)
        return
    if submission.queue_position:
        await estimate.record_fal_position(resources.redis, job.id, submission.queue_position)
        await keep_refreshing(resources, job)
    await refresh_status(resources, job)


async def _cancel_if_orphaned(services: Services, job_id: str, submission: FalSubmission) -> None:
    """The job moved on while we were submitting (cancelled, failed at its deadline, or ended
    by another request): unless this very request ended it (its webhook came first: then its
    URLs are kept, for a result fetched late), the request is nobody's."""
    sessions = services.resources.sessions
    async with sessions() as session:
        job = await get_job(session, job_id)
    if job is not None and job.fal_request_id == submission.request_id:
        if job.fal_response_url is None:
            await lifecycle.record(
                sessions,
                job,
                fal_status_url=submission.status_url,
                fal_response_url=submission.response_url,
                fal_cancel_url=submission.cancel_url,
            )
        return
    try:
        await services.fal.cancel(submission.cancel_url)
    except FalError as exc:
        log.info("fal did not cancel request %s: %s", submission.request_id, exc)


async def _with_input_photo(services: Services, job: Job, model: ModelSpec) -> dict[str, Any]:
    """The job's options with `image_url` set (`image_urls` for an album's photos),
    uploading the user's Telegram photos if needed, one at a time."""
    options = dict(job.options)
    if model.image_key is None or options.get("image_url") or options.get("image_urls"):
        return options
    resources = services.resources
    limits = PhotoLimits(
        max_bytes=catalog().modes[model.mode].max_input_bytes,
        max_side=MAX_INPUT_SIDE,
        fit_side=model.max_input_side,
    )
    urls = [
        await photo_to_fal(
            resources.outbox.notice, resources.http, services.fal, file_id=file_id, limits=limits
        )
        for file_id in model.photos(options.get("image_file_ids") or [options["image_file_id"]])
    ]
    if "image_file_ids" in options:
        options["image_urls"] = urls
    else:
        options["image_url"] = urls[0]
    await lifecycle.record(resources.sessions, job, options=options)
    return options


async def _with_prompt(services: Services, job: Job, options: dict[str, Any]) -> dict[str, Any]:
    """The options with `prompt_sent` when the helper or a style changes the user's words:
    settled once and kept, so a task run again sends the same prompt without asking the LLM
    again. `improved_prompt` is the helper's rewrite, when it gave one; when it did not, the
    user's words go and the helper's price goes back with the settled prompt."""
    style = catalog().style(options.get("style"))
    if "prompt_sent" in options or not job.prompt or not (options.get("improve") or style):
        return options
    options = dict(options)
    words = job.prompt
    unhelped = 0
    if options.get("improve"):
        helper = catalog().prompt_helper
        improved = await improved_prompt(services.fal, helper, job.prompt)
        if improved is not None:
            options["improved_prompt"] = words = improved
        else:
            unhelped = helper.price
    options["prompt_sent"] = style.render(words) if style else words
    await lifecycle.settle_prompt(services.resources.sessions, job, options, helper_price=unhelped)
    return options


async def fail_job(services: Services, job: Job, error: str, detail: str = "") -> bool:
    """End a live job as failed (`lifecycle.fail`) and have the user told (by the deliver
    task)."""
    moved = await lifecycle.fail(services.resources.sessions, job, error, detail)
    if moved:
        await enqueue_deliver(services.resources.redis, job.id, job.mode)
    return moved
