"""Asking fal to cancel a job the user cancelled (the move itself is `core/cancellation.py`'s),
so no one pays for work nobody will see. Runs in the worker, which holds the fal key."""

from __future__ import annotations

import logging

from core.fal_client import FalError
from core.jobs import get_job
from core.models import JobStatus
from workers.services import Services

log = logging.getLogger(__name__)


async def cancel_at_fal(services: Services, job_id: str) -> None:
    async with services.resources.sessions() as session:
        job = await get_job(session, job_id)
    if job is None or job.status != JobStatus.CANCELLED or not job.fal_cancel_url:
        return
    try:
        await services.fal.cancel(job.fal_cancel_url)
    except FalError as exc:
        log.info("fal did not cancel job %s: %s", job.id, exc)
