"""Cancelling a job at the user's request.

The database decides: a job still queued or submitted moves to `cancelled`, and a result
that arrives afterwards finds nothing to move. fal is asked to cancel too (by the worker,
which holds the fal key: `workers/cancellation.py`), so no one pays for work nobody will see.
"""

from __future__ import annotations

import logging

from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import lifecycle
from core.models import Job
from core.queue import CANCEL, queue_of

log = logging.getLogger(__name__)


async def cancel_job(sessions: async_sessionmaker[AsyncSession], redis: ArqRedis, job: Job) -> bool:
    """False when the job had already finished (too late to cancel)."""
    if not await lifecycle.cancel(sessions, job):
        return False
    try:
        await redis.enqueue_job(
            CANCEL, job.id, _job_id=f"{CANCEL}:{job.id}", _queue_name=queue_of(job.mode)
        )
    except RedisError:
        log.warning("could not ask a worker to cancel job %s at fal", job.id)
    return True
