"""`kadr jobs`: what the operator asks about jobs from a shell — one job in full, the jobs
that failed lately, the ones that are stuck — and the one repair that is theirs to make:
delivering a failed job's result again once what made delivery fail is fixed."""

from __future__ import annotations

from datetime import timedelta

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.domain.models import Job, JobStatus, utcnow
from core.jobs import lifecycle
from core.jobs.queries import get_job, recent_jobs, stuck_jobs
from core.jobs.queue import enqueue_deliver

Sessions = async_sessionmaker[AsyncSession]

#: A live job older than this is stuck whatever its mode (video deadlines are under an hour).
STUCK_AFTER = timedelta(hours=2)
FIELDS = (
    "id", "status", "mode", "model", "user_id", "chat_id", "update_id", "error",
    "error_detail", "fal_request_id", "delivery_attempts", "created_at", "submitted_at",
    "completed_at", "finished_at", "deadline_at", "notified_at",
)  # fmt: skip


def _line(job: Job) -> str:
    when = job.updated_at.strftime("%Y-%m-%d %H:%M:%S")
    return f"{job.id}  {when}  {job.status:<9}  {job.mode:<14}  {job.error or ''}"


def describe(job: Job) -> str:
    return "\n".join(f"{name + ':':<19} {getattr(job, name)}" for name in FIELDS)


async def show(sessions: Sessions, job_id: str) -> str:
    async with sessions() as session:
        job = await get_job(session, job_id)
    return describe(job) if job else f"no job {job_id}"


async def listing(sessions: Sessions, *, stuck: bool, hours: float) -> str:
    async with sessions() as session:
        if stuck:
            jobs = await stuck_jobs(session, utcnow() - STUCK_AFTER)
        else:
            jobs = await recent_jobs(session, [JobStatus.FAILED], utcnow() - timedelta(hours=hours))
    return "\n".join(_line(job) for job in jobs) or "none"


async def redeliver(sessions: Sessions, redis: ArqRedis, job_id: str) -> str:
    """A credit refunded at the failure stays refunded: the operator's redelivery is free."""
    async with sessions() as session:
        job = await get_job(session, job_id)
    if job is None or not await lifecycle.reopen_delivery(sessions, job):
        return f"job {job_id} is not a failed job with a result; nothing to deliver"
    await enqueue_deliver(redis, job.id, job.mode)
    return f"job {job_id}: delivery enqueued, with a fresh window"
