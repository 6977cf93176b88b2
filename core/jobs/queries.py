"""Reading the jobs table: a job, a user's jobs, what the sweeper and the operator look for,
the day's counts; and a new job as it will be written. Every write is in `core/jobs/moves.py`,
and only `core/jobs/lifecycle.py` makes them (import-linter checks it)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.domain.catalog import ModelSpec, catalog
from core.domain.models import LIVE_STATUSES, Job, JobStatus, ResultMessage, utcnow


def new_job(
    *,
    job_id: str,
    update_id: int | None,
    user_id: int,
    chat_id: int,
    language: str,
    model: ModelSpec,
    prompt: str,
    options: dict[str, Any],
    parent: Job | None = None,
) -> Job:
    """A queued job, not yet written; with `parent`, the next step of its chain of edits."""
    now = utcnow()
    return Job(
        id=job_id,
        update_id=update_id,
        user_id=user_id,
        chat_id=chat_id,
        language=language,
        mode=model.mode,
        model=model.id,
        prompt=prompt,
        options=options,
        parent_id=parent.id if parent is not None else None,
        step=parent.step + 1 if parent is not None else 1,
        status=JobStatus.QUEUED,
        deadline_at=now + catalog().modes[model.mode].deadline,
        created_at=now,
        updated_at=now,
    )


async def get_job(session: AsyncSession, job_id: str) -> Job | None:
    return await session.get(Job, job_id, populate_existing=True)


async def live_jobs_of(session: AsyncSession, user_id: int) -> int:
    """How many of the user's jobs are still in progress."""
    live = await session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.user_id == user_id, Job.status.in_(LIVE_STATUSES))
    )
    return live or 0


async def latest_jobs_of(session: AsyncSession, user_id: int, limit: int) -> list[Job]:
    """The user's last jobs, newest first, a chain of edits once: a job the user edited
    further is left out for its latest step (another member's edit of it, in a group, is
    not the user's chain)."""
    child = aliased(Job)
    edited = exists().where(child.parent_id == Job.id, child.user_id == Job.user_id)
    jobs = await session.scalars(
        select(Job)
        .where(Job.user_id == user_id, ~edited)
        .order_by(Job.created_at.desc())
        .limit(limit)
    )
    return list(jobs)


async def job_of_message(
    session: AsyncSession, chat_id: int, message_id: int
) -> tuple[Job, int] | None:
    """The job whose result the bot's message shows, and which of its files; None for any
    other message."""
    row = (
        await session.execute(
            select(Job, ResultMessage.position)
            .join(ResultMessage, ResultMessage.job_id == Job.id)
            .where(ResultMessage.chat_id == chat_id, ResultMessage.message_id == message_id)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def jobs_to_sweep(
    session: AsyncSession,
    *,
    now: datetime,
    stale_before: datetime,
    completed_before: datetime,
    limit: int = 500,
) -> list[Job]:
    """Jobs the normal path should have moved on by now, each kind oldest first and up to
    `limit` of each, so a pile of one kind (completed jobs that keep failing to deliver)
    cannot hide another (a queued job whose arq job was just lost): queued or completed but
    untouched (a lost arq job), submitted past their check time (a lost webhook), past their
    deadline, completed before `completed_before` (past the delivery window), or failed
    without the user having been told. A queued job whose submit may have reached fal is only
    waited for (its webhook) until its deadline."""
    kinds = (
        and_(
            Job.status == JobStatus.QUEUED,
            or_(
                and_(Job.submit_started_at.is_(None), Job.updated_at <= stale_before),
                Job.deadline_at <= now,
            ),
        ),
        and_(Job.status == JobStatus.SUBMITTED, or_(Job.check_at <= now, Job.deadline_at <= now)),
        and_(
            Job.status == JobStatus.COMPLETED,
            or_(Job.updated_at <= stale_before, Job.completed_at <= completed_before),
        ),
        and_(
            Job.status == JobStatus.FAILED,
            Job.notified_at.is_(None),
            Job.updated_at <= stale_before,
        ),
    )
    found: list[Job] = []
    for due in kinds:
        found += await session.scalars(select(Job).where(due).order_by(Job.updated_at).limit(limit))
    return found


async def recent_jobs(
    session: AsyncSession, statuses: Iterable[str], since: datetime, limit: int = 50
) -> list[Job]:
    """Jobs in `statuses` touched since `since`, newest first (`kadr jobs`)."""
    query = (
        select(Job)
        .where(Job.status.in_(list(statuses)), Job.updated_at >= since)
        .order_by(Job.updated_at.desc())
        .limit(limit)
    )
    return list(await session.scalars(query))


async def stuck_jobs(session: AsyncSession, created_before: datetime, limit: int = 50) -> list[Job]:
    """Live jobs older than a job should ever get, oldest first (`kadr jobs --stuck`)."""
    query = (
        select(Job)
        .where(Job.status.in_(LIVE_STATUSES), Job.created_at <= created_before)
        .order_by(Job.created_at)
        .limit(limit)
    )
    return list(await session.scalars(query))


async def jobs_since(session: AsyncSession, since: datetime) -> dict[tuple[str, str], int]:
    """Jobs created since `since`, counted by (mode, status)."""
    rows = await session.execute(
        select(Job.mode, Job.status, func.count())
        .where(Job.created_at >= since)
        .group_by(Job.mode, Job.status)
    )
    return {(mode, status): int(count) for mode, status, count in rows.all()}


async def failures_since(session: AsyncSession, since: datetime) -> dict[str, int]:
    """Jobs created since `since` that failed, counted by error."""
    rows = await session.execute(
        select(Job.error, func.count())
        .where(Job.created_at >= since, Job.status == JobStatus.FAILED)
        .group_by(Job.error)
    )
    return {str(error): int(count) for error, count in rows.all()}


async def results_of(
    session: AsyncSession,
    user_id: int,
    *,
    limit: int,
    words: Iterable[str] = (),
    before: tuple[datetime, str] | None = None,
) -> list[Job]:
    """The user's delivered jobs, newest first: those whose prompt holds every one of
    `words` (any case), older than `before` (created_at, id) when paging on. Only ever the
    user's own: inline mode and the Mini App list nothing else."""
    query = select(Job).where(Job.user_id == user_id, Job.status == JobStatus.DELIVERED)
    for word in words:
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Job.prompt.ilike(f"%{escaped}%", escape="\\"))
    if before is not None:
        created_at, job_id = before
        query = query.where(
            or_(Job.created_at < created_at, and_(Job.created_at == created_at, Job.id < job_id))
        )
    query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    return list(await session.scalars(query))
