"""Asking fal to stop a job the user cancelled after its submit may have reached fal (the tap
itself is `core/jobs/cancel.py`'s), and deciding from fal's answers who pays.

fal's cancel removes a request still in its queue; to one in progress it only sends a
signal, and the model may finish and be billed. So a job is refunded only when fal confirms
it never ran: it was in fal's queue when cancelled, or fal reports it cancelled or failed
(its webhook, `core/jobs/fal_result.py`). A result that comes anyway is delivered and charged.
Runs in the worker, which holds the fal key.
"""

from __future__ import annotations

import logging

from core.domain.models import Job, JobStatus
from core.fal.client import FalCancelOutcome
from core.infra.metrics import FAL_CALLS
from core.infra.retry import RetryLater, backoff
from core.jobs import lifecycle
from core.jobs.queries import get_job
from core.jobs.queue import enqueue_deliver
from workers.services import Services

log = logging.getLogger(__name__)


async def cancel_at_fal(services: Services, job_id: str, *, attempt: int) -> None:
    async with services.resources.sessions() as session:
        job = await get_job(session, job_id)
    if job is None or job.cancel_requested_at is None:
        return
    if job.status not in (JobStatus.QUEUED, JobStatus.SUBMITTED):
        return  # over, or its result came: delivered and charged
    if job.status == JobStatus.QUEUED and job.submit_started_at is None:
        await _cancelled(services, job, unsent=True)  # the submit was given back meanwhile
        return
    if not (job.fal_status_url and job.fal_cancel_url):
        raise RetryLater(backoff(attempt), "the submit's answer is not recorded yet")
    status = await services.fal.status(job.fal_status_url)
    if status.completed:
        return  # its webhook (or the sweeper) records the result or fal's error
    outcome = await services.fal.cancel(job.fal_cancel_url)
    FAL_CALLS.labels("cancel", outcome.lower()).inc()
    if status.status == "IN_QUEUE" and outcome is FalCancelOutcome.REQUESTED:
        await _cancelled(services, job, request_id=job.fal_request_id)
        return
    log.info("job %s: fal had started it (%s); its result decides", job.id, outcome)


async def _cancelled(
    services: Services, job: Job, *, unsent: bool = False, request_id: str | None = None
) -> None:
    """fal never ran it: cancelled, refunded, and the user told by the deliver task."""
    resources = services.resources
    if await lifecycle.cancel(
        resources.sessions, job, unsent=unsent, request_id=request_id, notified=False
    ):
        await enqueue_deliver(resources.redis, job.id, job.mode)
