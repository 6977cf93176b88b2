"""Writing the jobs table: a job's state machine (which moves are allowed) and every write to a
job row. Only `core/jobs/lifecycle.py` imports this module (import-linter checks it): the
lifecycle owns the transaction and the metrics of each move.

Every move is a conditional UPDATE (`WHERE id = ? AND status IN (...)`), so a task that runs
twice — arq runs jobs at least once — finds nothing to move the second time. Moves and
field writes do not commit: the caller owns the transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, Update, bindparam, func, literal, or_, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.domain.models import LIVE_STATUSES, Job, JobStatus, ResultMessage, utcnow

ALLOWED: dict[JobStatus, tuple[JobStatus, ...]] = {
    JobStatus.SUBMITTED: (JobStatus.QUEUED,),
    JobStatus.COMPLETED: (JobStatus.QUEUED, JobStatus.SUBMITTED),
    JobStatus.DELIVERED: (JobStatus.COMPLETED,),
    JobStatus.FAILED: (JobStatus.QUEUED, JobStatus.SUBMITTED, JobStatus.COMPLETED),
    JobStatus.CANCELLED: (JobStatus.QUEUED, JobStatus.SUBMITTED),
}

#: When a status is reached, the timestamp column that records it.


STAMPS: dict[JobStatus, str] = {
    JobStatus.SUBMITTED: "submitted_at",
    JobStatus.COMPLETED: "completed_at",
    JobStatus.DELIVERED: "finished_at",
    JobStatus.FAILED: "finished_at",
    JobStatus.CANCELLED: "finished_at",
}


async def insert_job(session: AsyncSession, job: Job) -> None:
    """Write a new job (not committed); IntegrityError when its update already made it (the
    database says so)."""
    session.add(job)
    await session.flush()


async def move(
    session: AsyncSession,
    job_id: str,
    to: JobStatus,
    *,
    only_from: Iterable[JobStatus] | None = None,
    request_id: str | None = None,
    unsent: bool = False,
    **values: Any,
) -> bool:
    """Move a job to `to` if it is in a state that may go there; False when it was not.
    `request_id`: what fal reported is about this request, so the move happens only if the
    job's fal request is this one or not known yet (then it becomes this one), decided in the
    same statement so that a submit recorded meanwhile cannot be overwritten. `unsent`: only
    if no submit to fal was ever started (decided in the same statement too).
    Not committed: `core/jobs/lifecycle.py` commits it, with whatever else belongs to the move."""
    sources = tuple(only_from) if only_from is not None else ALLOWED[to]
    statement = _move_statement(to, sources, request_id is not None, tuple(values), (), unsent)
    result = await session.execute(statement, _move_params(job_id, request_id, values))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def move_returning(
    session: AsyncSession,
    job_id: str,
    to: JobStatus,
    columns: tuple[str, ...],
    *,
    request_id: str | None = None,
    **values: Any,
) -> Row[Any] | None:
    """`move`, and the moved job's `columns` (None when it did not move): for a caller that
    needs a few of them and would otherwise read the row first, a second round trip."""
    statement = _move_statement(
        to, ALLOWED[to], request_id is not None, tuple(values), columns, False
    )
    result = await session.execute(statement, _move_params(job_id, request_id, values))
    return result.first()


@functools.lru_cache(maxsize=128)
def _move_statement(
    to: JobStatus,
    sources: tuple[JobStatus, ...],
    bound: bool,
    fields: tuple[str, ...],
    returning: tuple[str, ...],
    unsent: bool,
) -> Update:
    """Built once per shape, the values bound at execution: building an UPDATE costs more
    CPU than sending it, and the fal webhook runs one per result."""
    columns = Job.__table__.c
    values: dict[str, Any] = {
        name: bindparam(f"v_{name}", type_=columns[name].type) for name in fields
    }
    if to in STAMPS:
        values[STAMPS[to]] = bindparam("stamp", type_=columns[STAMPS[to]].type)
    # One parameter per status, not IN's expanding list: that one is rendered at each execution.
    statuses = [literal(source, columns.status.type) for source in sources]
    where = [Job.id == bindparam("job_id"), Job.status.in_(statuses)]
    if unsent:
        where.append(Job.submit_started_at.is_(None))
    if bound:
        where.append(or_(Job.fal_request_id.is_(None), Job.fal_request_id == bindparam("rid")))
        values["fal_request_id"] = func.coalesce(Job.fal_request_id, bindparam("rid_new"))
    statement = (
        update(Job)
        .where(*where)
        .values(status=to, updated_at=bindparam("now", type_=columns.updated_at.type), **values)
        .execution_options(synchronize_session=False)
    )
    return statement.returning(*(columns[name] for name in returning)) if returning else statement


def _move_params(job_id: str, request_id: str | None, values: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()
    params = {"job_id": job_id, "now": now, "stamp": now, "rid": request_id, "rid_new": request_id}
    return params | {f"v_{name}": value for name, value in values.items()}


async def set_fields(session: AsyncSession, job_id: str, **values: Any) -> None:
    """Update bookkeeping columns that do not change the state (not committed)."""
    await session.execute(update(Job).where(Job.id == job_id).values(updated_at=utcnow(), **values))


async def set_queued_fields(session: AsyncSession, job_id: str, **values: Any) -> bool:
    """`set_fields` while the job is still queued (its row locked till the commit); False
    when it is not. Not committed."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
        .values(updated_at=utcnow(), **values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def set_submit_started(session: AsyncSession, job_id: str, started: bool) -> bool:
    """Claim (True) the one submit of a queued job, or give it back (False) when fal certainly
    did not get it; False when the job is not queued or the claim was not as expected.
    Not committed."""
    now = utcnow()
    result = await session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.status == JobStatus.QUEUED,
            Job.submit_started_at.is_(None) if started else Job.submit_started_at.is_not(None),
        )
        .values(submit_started_at=now if started else None, updated_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def set_cancel_requested(session: AsyncSession, job_id: str) -> bool:
    """Record that the user asked to cancel a live job; False when it is no longer live or
    was asked already. Not committed."""
    now = utcnow()
    result = await session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.status.in_(LIVE_STATUSES),
            Job.cancel_requested_at.is_(None),
        )
        .values(cancel_requested_at=now, updated_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def set_notified(session: AsyncSession, job_id: str, notified: bool) -> bool:
    """Claim (True) or give back (False) the right to send a job's failure notice; False when
    someone else holds it (or no one did). Not committed."""
    result = await session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.notified_at.is_(None) if notified else Job.notified_at.is_not(None),
        )
        .values(notified_at=utcnow() if notified else None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def touch_jobs(session: AsyncSession, job_ids: Iterable[str]) -> None:
    """Mark jobs as just looked at (not committed): a job checked now goes to the back of the
    sweeper's line instead of taking its place at the front again next minute."""
    await session.execute(
        update(Job)
        .where(Job.id.in_(list(job_ids)))
        .values(updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def fail_jobs(
    session: AsyncSession, seen: Iterable[tuple[str, str]], **values: Any
) -> list[tuple[str, str]]:
    """Fail, in one UPDATE, each job (id, status) still in the status it was seen in; returns
    the (id, mode) of those moved. Not committed."""
    now = utcnow()
    result = await session.execute(
        update(Job)
        .where(tuple_(Job.id, Job.status).in_(list(seen)))
        .values(status=JobStatus.FAILED, updated_at=now, finished_at=now, **values)
        .returning(Job.id, Job.mode)
        .execution_options(synchronize_session=False)
    )
    return [(row.id, row.mode) for row in result]


async def add_delivery_attempt(session: AsyncSession, job_id: str) -> int:
    """Count one failed delivery of a completed job; returns the count (0: no longer
    completed). Not committed."""
    count = await session.scalar(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.COMPLETED)
        .values(delivery_attempts=Job.delivery_attempts + 1, updated_at=utcnow())
        .returning(Job.delivery_attempts)
    )
    return count or 0


async def reopen_failed_delivery(session: AsyncSession, job_id: str) -> bool:
    """Give a failed job that has its result a fresh delivery window (the operator's
    `kadr jobs --redeliver`, after fixing what made delivery fail). Not committed."""
    now = utcnow()
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.FAILED, Job.result.is_not(None))
        .values(
            status=JobStatus.COMPLETED,
            completed_at=now,
            updated_at=now,
            finished_at=None,
            delivery_attempts=0,
            notified_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def add_result_messages(
    session: AsyncSession, job_id: str, chat_id: int, message_ids: list[int]
) -> None:
    """Record the messages that show the job's result, the nth showing its nth file; an
    IntegrityError when one is recorded already. Not committed."""
    session.add_all(
        ResultMessage(chat_id=chat_id, message_id=message_id, job_id=job_id, position=position)
        for position, message_id in enumerate(message_ids)
    )
    await session.flush()


async def set_undo_claim(session: AsyncSession, job_id: str, update_id: int | None) -> bool:
    """Claim a job's ↩️ Undo for the tap `update_id` (free, or already this tap's), or give
    it back (None). Not committed."""
    claim = update(Job).where(Job.id == job_id)
    if update_id is not None:
        claim = claim.where(or_(Job.undo_update_id.is_(None), Job.undo_update_id == update_id))
    result = await session.execute(claim.values(undo_update_id=update_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]
