"""A job's life, in one place: every write to a job row, every state move and the metrics
that belong to the moves.

    accept → queued → submitted → completed → delivered
    fail:    queued, submitted or completed → failed
    cancel:  queued or submitted            → cancelled

Each move is one conditional UPDATE in its own transaction (`core/jobs/moves.py` holds the
statements, and only this module imports it), so a move asked for twice happens once; it
returns whether it happened. A job that reaches a final state goes through `_finish`, which
counts it as finished exactly once: what must happen once per finished job belongs there too
— the refund of a job that ends without a result, and the credits of an invitation when
the invited user's first job is delivered (`core/domain/referrals.py`), in the same
transaction as its move.
`accept` reserves the job's credits in the same transaction as its row
(`core/domain/credits.py`). Callers — the bot's handlers, the api's fal webhook, the
worker's tasks — decide what to ask for and what to do after (tell the user, enqueue the
next task); they never write the row themselves."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.domain import credits, referrals, spend
from core.domain.models import Job, JobStatus, utcnow
from core.fal.client import FalSubmission
from core.infra.logs import log_fields
from core.infra.metrics import (
    CREDIT_REFUSALS,
    CREDITS_REFUNDED,
    CREDITS_RESERVED,
    JOBS_CREATED,
    JOBS_FINISHED,
    STAGE_SECONDS,
)
from core.jobs.errors import GENERIC_FAL, error_code, error_detail
from core.jobs.moves import (
    add_delivery_attempt,
    add_result_messages,
    fail_jobs,
    insert_job,
    move,
    move_returning,
    reopen_failed_delivery,
    set_cancel_requested,
    set_fields,
    set_notified,
    set_queued_fields,
    set_submit_started,
    set_undo_claim,
    touch_jobs,
)

log = logging.getLogger(__name__)

Sessions = async_sessionmaker[AsyncSession]

#: The longest error detail kept on a job.
DETAIL_LIMIT = 2000


class Completed(NamedTuple):
    mode: str
    model: str
    at_fal: float | None
    """Seconds from the submit to the result (None when the submit time was not kept)."""


async def accept(sessions: Sessions, job: Job, *, price: int = 0, free_per_day: int = 0) -> bool:
    """Write a new (queued) job and reserve its `price` with it, in one transaction; False
    when its update already made it. Raises `credits.NotEnoughCredits` (no job written)."""
    try:
        async with sessions.begin() as session:
            taken = await credits.reserve(
                session, job_id=job.id, user_id=job.user_id, price=price, free_per_day=free_per_day
            )
            await insert_job(session, job)
    except IntegrityError:
        return False
    except credits.NotEnoughCredits:
        CREDIT_REFUSALS.labels(job.mode).inc()
        raise
    JOBS_CREATED.labels(job.mode).inc()
    _count(CREDITS_RESERVED, taken)
    return True


async def start_submit(sessions: Sessions, job: Job) -> bool:
    """The right to send the job to fal, taken (and committed) before the request goes out,
    so a job reaches fal at most once: False when the job is no longer queued or a submit
    was already started (it may have reached fal; its webhook or the sweeper ends the job)."""
    async with sessions.begin() as session:
        return await set_submit_started(session, job.id, True)


async def abandon_submit(sessions: Sessions, job: Job) -> None:
    """fal certainly did not get the request (refused connection, an explicit error answer):
    the next try may send it."""
    async with sessions.begin() as session:
        await set_submit_started(session, job.id, False)


async def mark_submitted(
    sessions: Sessions, job: Job, submission: FalSubmission, *, check_at: datetime
) -> bool:
    """fal took the job; it is asked about at `check_at` if its webhook has not come."""
    moved = await _move(
        sessions,
        job,
        JobStatus.SUBMITTED,
        fal_request_id=submission.request_id,
        fal_status_url=submission.status_url,
        fal_response_url=submission.response_url,
        fal_cancel_url=submission.cancel_url,
        check_at=check_at,
    )
    if moved:
        _observe(job, "queued", job.created_at)
    return moved


async def mark_completed(
    sessions: Sessions, job_id: str, result: Any, *, request_id: str | None = None
) -> Completed | None:
    """fal's result came; with `request_id`, it completes the job only if that is the job's
    request (or the job did not know its request yet). What the fal webhook needs if it
    moved (the mode, to queue its delivery; the model and its fal time, for estimates), read
    in the same statement as the move. fal bills the result it made, so the job's cost is
    counted here, once."""
    async with sessions.begin() as session:
        moved = await move_returning(
            session,
            job_id,
            JobStatus.COMPLETED,
            ("mode", "submitted_at", "model", "options"),
            request_id=request_id or None,
            result=result,
        )
        if moved is None:
            return None
        paid = await credits.reserved(session, job_id)
    _observe_stage(moved.mode, "fal", moved.submitted_at)
    spend.count_result(moved.model, moved.options, paid)
    at_fal = (utcnow() - moved.submitted_at).total_seconds() if moved.submitted_at else None
    return Completed(str(moved.mode), str(moved.model), at_fal)


async def mark_delivered(
    sessions: Sessions, job: Job, result: dict[str, Any], *, message_ids: Iterable[int] = ()
) -> bool:
    """The result reached the chat (`result` now holds Telegram's file ids too) in the
    messages `message_ids`, recorded with the move: a reply to one of them edits the result."""
    moved = await _finish(
        sessions,
        job,
        JobStatus.DELIVERED,
        "delivered",
        shown_in=list(message_ids),
        notified_at=utcnow(),
        result=result,
    )
    if moved:
        _observe(job, "delivery", job.completed_at)
        _observe(job, "total", job.created_at)
    return moved


async def fail(
    sessions: Sessions,
    job: Job,
    error: str,
    detail: str = "",
    *,
    by_fal: bool = False,
    notified: bool = False,
    request_id: str | None = None,
) -> bool:
    """End a live job as failed because of `error`: a code of `core/jobs/errors.py` (the key
    of the text the user gets), or fal's free-form error type, which is stored as its code
    with the type itself in the detail, so neither the column nor the metric label can
    overflow.

    `by_fal`: fal reported the error — counted as `fal_error`, it ends the fal stage, and it
    cannot fail a job whose result already came. `request_id`: the fal request the error is
    about; it fails the job only if that is the job's request (or the job did not know its
    request yet). `notified`: no notice is to be sent (the chat cannot be reached). Telling
    the user is the caller's next step otherwise."""
    code = error_code(error)
    told: dict[str, Any] = {"notified_at": utcnow()} if notified else {}
    moved = await _finish(
        sessions,
        job,
        JobStatus.FAILED,
        GENERIC_FAL if by_fal else code,
        only_from=(JobStatus.QUEUED, JobStatus.SUBMITTED) if by_fal else None,
        request_id=request_id or None,
        error=code,
        error_detail=error_detail(error, detail, DETAIL_LIMIT),
        **told,
    )
    if moved and by_fal:
        _observe(job, "fal", job.submitted_at)
    return moved


async def fail_many(
    sessions: Sessions, jobs: Iterable[Job], error: str, detail: str = ""
) -> list[str]:
    """`fail` for many jobs in one UPDATE (the sweeper's past-deadline jobs), each only from
    the state it was seen in, each refunded in the same transaction; returns the ids of
    those that moved. The user is not told yet."""
    seen = [(job.id, job.status) for job in jobs]
    if not seen:
        return []
    async with sessions.begin() as session:
        moved = await fail_jobs(session, seen, error=error, error_detail=detail[:DETAIL_LIMIT])
        refunds = [await credits.refund(session, job_id) for job_id, _ in moved]
    for (job_id, mode), refunded in zip(moved, refunds, strict=True):
        _count_finished(job_id, mode, error)
        _count(CREDITS_REFUNDED, refunded)
    return [job_id for job_id, _ in moved]


async def add_failed_delivery(sessions: Sessions, job: Job) -> int:
    """One more failed delivery of a completed job; returns how many there were so far."""
    async with sessions.begin() as session:
        return await add_delivery_attempt(session, job.id)


async def mark_checked(sessions: Sessions, jobs: Iterable[Job]) -> None:
    """The sweeper enqueued these jobs' next task again: they wait at the back of its line."""
    job_ids = [job.id for job in jobs]
    if job_ids:
        async with sessions.begin() as session:
            await touch_jobs(session, job_ids)


async def cancel(
    sessions: Sessions,
    job: Job,
    *,
    unsent: bool = False,
    request_id: str | None = None,
    notified: bool = True,
) -> bool:
    """Cancelled, and refunded: fal never ran it. `unsent`: only if no submit was started
    (the user's tap decides alone); otherwise fal said so (`request_id`: about the job's own
    request). `notified`: the user has been told already; if not, the deliver task tells
    them. False when it was too late (the result had come, or it was over)."""
    told: dict[str, Any] = {"notified_at": utcnow()} if notified else {"error": "cancelled"}
    return await _finish(
        sessions,
        job,
        JobStatus.CANCELLED,
        "cancelled",
        unsent=unsent,
        request_id=request_id,
        **told,
    )


async def request_cancel(sessions: Sessions, job: Job) -> bool:
    """The user asked to cancel a job fal may be running: fal's answer decides how it ends
    (`workers/cancellation.py`). False when it is over or was asked already."""
    async with sessions.begin() as session:
        return await set_cancel_requested(session, job.id)


async def reopen_delivery(sessions: Sessions, job: Job) -> bool:
    """The operator asks for a failed job's result to be delivered again (`kadr jobs
    --redeliver`); False unless it failed with its result in hand."""
    async with sessions.begin() as session:
        return await reopen_failed_delivery(session, job.id)


async def record(sessions: Sessions, job: Job, **values: Any) -> None:
    """Keep what the job learned on the way without moving it: the photo's fal URL
    (`options`), a result fetched late (`result`), the next status check (`check_at`)."""
    async with sessions.begin() as session:
        await set_fields(session, job.id, **values)


async def settle_prompt(
    sessions: Sessions, job: Job, options: dict[str, Any], *, helper_price: int = 0
) -> bool:
    """Keep the prompt fal is to get (in `options`) while the job is queued; with
    `helper_price`, the prompt helper did not help and its price goes back in the same
    transaction: once (`credits.refund_helper`), and not for a job that ended meanwhile (its
    own refund gave back everything; the job's row lock orders the two). False when the
    job is no longer queued."""
    async with sessions.begin() as session:
        if not await set_queued_fields(session, job.id, options=options):
            return False
        refunded = await credits.refund_helper(session, job.id, helper_price)
    _count(CREDITS_REFUNDED, refunded)
    return True


async def claim_undo(sessions: Sessions, job: Job, update_id: int) -> bool:
    """The right to show the result `job` edited again (↩️ Undo), taken before it is sent:
    once per job, except for the same tap handled again (`update_id`)."""
    async with sessions.begin() as session:
        return await set_undo_claim(session, job.id, update_id)


async def release_undo(sessions: Sessions, job: Job) -> None:
    """The earlier version could not be shown: the next tap may try again."""
    async with sessions.begin() as session:
        await set_undo_claim(session, job.id, None)


async def shown_again(
    sessions: Sessions, job: Job, chat_id: int, message_ids: Iterable[int]
) -> None:
    """`job`'s result is shown again in these messages (↩️ Undo): replies to them edit it.
    The same tap handled again (its sends replayed) finds them recorded: nothing to add."""
    try:
        async with sessions.begin() as session:
            await add_result_messages(session, job.id, chat_id, list(message_ids))
    except IntegrityError:
        return


async def claim_notice(sessions: Sessions, job: Job) -> bool:
    """The right to send the failure notice, taken before it is sent so it goes out once."""
    async with sessions.begin() as session:
        return await set_notified(session, job.id, True)


async def release_notice(sessions: Sessions, job: Job) -> None:
    """The notice could not go now: the next attempt may send it."""
    async with sessions.begin() as session:
        await set_notified(session, job.id, False)


async def _finish(
    sessions: Sessions,
    job: Job,
    to: JobStatus,
    outcome: str,
    *,
    only_from: Iterable[JobStatus] | None = None,
    request_id: str | None = None,
    unsent: bool = False,
    shown_in: list[int] | None = None,
    **values: Any,
) -> bool:
    """The one way into a final state: the move, its refund when the job ends without a
    result or its invitation's credits when it is delivered (same transaction), and its
    count once when it happened. `shown_in`: the messages of a delivered result, recorded
    with the move."""
    refunded = credits.Balance()
    async with sessions.begin() as session:
        moved = await move(
            session,
            job.id,
            to,
            only_from=only_from,
            request_id=request_id,
            unsent=unsent,
            **values,
        )
        if moved and to != JobStatus.DELIVERED:
            refunded = await credits.refund(session, job.id)
        elif moved:
            await referrals.credit_first_delivery(session, job.user_id)
        if moved and shown_in:
            await add_result_messages(session, job.id, job.chat_id, shown_in)
    if moved:
        with log_fields(user_id=job.user_id):
            _count_finished(job.id, job.mode, outcome)
        _count(CREDITS_REFUNDED, refunded)
    return moved


def _count_finished(job_id: str, mode: str, outcome: str) -> None:
    """The one place a finished job is counted and logged."""
    JOBS_FINISHED.labels(mode, outcome).inc()
    with log_fields(job_id=job_id):
        log.info("job %s ended: %s", job_id, outcome)


async def _move(
    sessions: Sessions,
    job: Job,
    to: JobStatus,
    *,
    only_from: Iterable[JobStatus] | None = None,
    request_id: str | None = None,
    **values: Any,
) -> bool:
    async with sessions.begin() as session:
        return await move(session, job.id, to, only_from=only_from, request_id=request_id, **values)


def _count(counter: Any, amount: credits.Balance) -> None:
    for kind, value in (("free", amount.free), ("paid", amount.paid)):
        if value:
            counter.labels(kind).inc(value)


def _observe(job: Job, stage: str, since: datetime | None) -> None:
    _observe_stage(job.mode, stage, since)


def _observe_stage(mode: str, stage: str, since: datetime | None) -> None:
    if since is not None:
        STAGE_SECONDS.labels(mode, stage).observe((utcnow() - since).total_seconds())
