"""The sweeper: the safety net under the push-only pipeline, run by one worker every minute.

It finds jobs the normal path should have moved on by now and acts on each once: re-enqueue a
queued or completed job (its arq job may have been lost with Redis), ask fal once about a
submitted job whose webhook is late, and fail what is past its deadline (or, completed, past
its delivery window). It is the only place kadr ever asks fal for a status.

A sweep must end within its cron timeout however slow fal is and however many jobs are due:
fal is asked concurrently (`FAL_CHECKS_AT_ONCE`), each answer waited for `FAL_CHECK_TIMEOUT`
and all of them `FAL_CHECKS_BUDGET` (a job not asked in time is asked next sweep), and the
jobs to fail are failed in one UPDATE per reason. A re-enqueued job goes to the back of the line,
and each kind of job has its own share of the batch, so a pile of jobs that keep failing
cannot keep a newly lost one from being reached.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta

from core.domain import broadcasts
from core.domain.models import Job, JobStatus, utcnow
from core.fal.client import (
    FalCancelOutcome,
    FalError,
    FalFinalError,
    FalRetryableError,
    FalWebhook,
)
from core.infra.metrics import FAL_CALLS
from core.jobs import lifecycle
from core.jobs.fal_result import record_fal_result
from core.jobs.queries import jobs_to_sweep
from core.jobs.queue import (
    enqueue_broadcast,
    enqueue_deliver,
    enqueue_submit,
)
from workers.delivery import DELIVERY_WINDOW, given_up
from workers.services import Services

log = logging.getLogger(__name__)

#: Seconds one fal status (or result) request of the sweeper may take.
FAL_CHECK_TIMEOUT = 5.0
#: fal requests one sweep runs at once.
FAL_CHECKS_AT_ONCE = 20
#: How long past its deadline a request fal is running may still finish and be delivered
#: (and charged): fal bills what it ran, so it is not failed and refunded while it runs.
RUNNING_GRACE = timedelta(minutes=30)
#: Seconds the status checks of one sweep may take together, and its cancels again: both
#: together well inside the cron's 55 s.
FAL_CHECKS_BUDGET = 20.0


async def sweep(services: Services, *, now: datetime | None = None) -> int:
    """Nudge every overdue job once; returns how many were looked at."""
    now = now or utcnow()
    stale_before = now - timedelta(seconds=services.resources.config.SWEEP_STALE_AFTER)
    async with services.resources.sessions() as session:
        jobs = await jobs_to_sweep(
            session, now=now, stale_before=stale_before, completed_before=now - DELIVERY_WINDOW
        )
    expired = [job for job in jobs if _expired(job, now)]
    late = [job for job in jobs if job.status == JobStatus.SUBMITTED]
    await _requeue([job for job in jobs if job not in expired and job not in late], services)
    expired += await _ask_fal(services, late, now)
    await _fail_expired(services, expired)
    if jobs:
        log.info("swept %d jobs", len(jobs))
    for broadcast_id in await broadcasts.running(services.resources.sessions):
        await enqueue_broadcast(services.resources.redis, broadcast_id)
    return len(jobs)


def _expired(job: Job, now: datetime) -> bool:
    """Queued past its deadline (whether or not a submit may have reached fal), or completed
    and given up (refused by Telegram, past its delivery window); a submitted job is asked
    about first. A completed job Telegram never refused is only re-enqueued: its result is made."""
    if job.status == JobStatus.QUEUED:
        return job.deadline_at <= now
    return job.status == JobStatus.COMPLETED and given_up(job, now)


async def _requeue(jobs: list[Job], services: Services) -> None:
    """Enqueue each job's next task again (arq drops a copy of one queued or running)."""
    redis = services.resources.redis
    for job in jobs:
        try:
            if job.status == JobStatus.QUEUED:
                await enqueue_submit(redis, job.id, job.mode)
            else:
                await enqueue_deliver(redis, job.id, job.mode)
        except Exception:
            log.exception("sweeping job %s failed; next sweep tries again", job.id)
    await lifecycle.mark_checked(services.resources.sessions, jobs)


async def _ask_fal(services: Services, jobs: list[Job], now: datetime) -> list[Job]:
    """Ask fal about each late job, concurrently and within the budget; returns the ones past
    their deadline that fal did not finish (or did not answer about in time)."""
    gate = asyncio.Semaphore(FAL_CHECKS_AT_ONCE)

    async def ask(job: Job) -> bool:
        async with gate:
            return await _ask_once(services, job, now)

    outcomes = await _within_budget([functools.partial(ask, job) for job in jobs])
    return [
        job
        for job, dead in zip(jobs, outcomes, strict=True)
        if dead or (dead is None and job.deadline_at <= now)
    ]


async def _within_budget(calls: Iterable[Callable[[], Awaitable[bool]]]) -> list[bool | None]:
    """Run the calls together; one that fails or is not done within the budget is None."""
    tasks = [asyncio.ensure_future(call()) for call in calls]
    if not tasks:
        return []
    done, pending = await asyncio.wait(tasks, timeout=FAL_CHECKS_BUDGET)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    outcomes: list[bool | None] = []
    for task in tasks:
        if task in done and task.exception() is None:
            outcomes.append(task.result())
        else:
            if task in done:
                log.error("sweeping a job failed", exc_info=task.exception())
            outcomes.append(None)
    return outcomes


async def _ask_once(services: Services, job: Job, now: datetime) -> bool:
    """One status request; a finished request's result (or error) is recorded as if the
    webhook came. True when the job is past its deadline and fal has not finished it."""
    fal = services.fal
    try:
        status = await fal.status(job.fal_status_url or "", http_timeout=FAL_CHECK_TIMEOUT)
        FAL_CALLS.labels("status", "ok").inc()
        if status.failed:
            await _record(
                services, job, "ERROR", None, error_type=status.error_type, error=status.error
            )
            return False
        if status.completed:
            await _record(services, job, "OK", await _result_or_none(services, job))
            return False
        if status.status == "IN_PROGRESS" and now < job.deadline_at + RUNNING_GRACE:
            await _running_late(services, job, now)
            return False
    except FalFinalError as exc:
        FAL_CALLS.labels("status", "final_error").inc()
        await _record(services, job, "ERROR", None, error_type=exc.error_type, error=str(exc))
        return False
    except FalError as exc:
        FAL_CALLS.labels("status", "retryable_error").inc()
        log.info("fal status of job %s unknown: %s", job.id, exc)
    if job.deadline_at <= now:
        return True
    await lifecycle.record(services.resources.sessions, job, check_at=job.deadline_at)
    return False


async def _running_late(services: Services, job: Job, now: datetime) -> None:
    """fal is making it: past its deadline, it is asked to stop, but that is only a signal,
    and a result that comes is delivered and kept. Until fal ends it (its own time limits,
    the signal honoured: refunded then), or `RUNNING_GRACE` runs out, it is not failed."""
    if job.deadline_at <= now and job.fal_cancel_url:
        await _cancel_quietly(services, job.fal_cancel_url)
    check_at = max(
        job.deadline_at, now + timedelta(seconds=services.resources.config.SWEEP_INTERVAL)
    )
    await lifecycle.record(services.resources.sessions, job, check_at=check_at)


async def _result_or_none(services: Services, job: Job) -> object:
    """fal says the request completed, so it is never failed for time: a result fal cannot
    hand over now (a 5xx) is recorded as to come, and the deliver task fetches it, retrying."""
    try:
        return await services.fal.result(job.fal_response_url or "", http_timeout=FAL_CHECK_TIMEOUT)
    except FalRetryableError as exc:
        log.info("fal finished job %s; its result comes with the delivery (%s)", job.id, exc)
        return None


async def _record(
    services: Services, job: Job, status: str, payload: object, **error: str | None
) -> None:
    webhook = FalWebhook(
        request_id=job.fal_request_id or "", status=status, payload=payload, **error
    )
    resources = services.resources
    await record_fal_result(resources, webhook, job.id)


async def _fail_expired(services: Services, jobs: list[Job]) -> None:
    """Fail the expired jobs in bulk, have each user told (the deliver task sends the notice
    once) and cancel at fal what it may still be running."""
    resources = services.resources
    by_reason = {
        "timeout": [job for job in jobs if job.status != JobStatus.COMPLETED],
        "undeliverable": [job for job in jobs if job.status == JobStatus.COMPLETED],
    }
    moved: set[str] = set()
    for error, group in by_reason.items():
        moved.update(await lifecycle.fail_many(resources.sessions, group, error))
    failed = [job for job in jobs if job.id in moved]
    for job in failed:
        try:
            await enqueue_deliver(resources.redis, job.id, job.mode)
        except Exception:
            log.exception("could not enqueue the notice of job %s; next sweep will", job.id)
    gate = asyncio.Semaphore(FAL_CHECKS_AT_ONCE)

    async def cancel(url: str) -> bool:
        async with gate:
            return await _cancel_quietly(services, url)

    urls = [job.fal_cancel_url for job in failed if job.fal_cancel_url]
    await _within_budget([functools.partial(cancel, url) for url in urls])


async def _cancel_quietly(services: Services, cancel_url: str) -> bool:
    try:
        outcome = await services.fal.cancel(cancel_url, http_timeout=FAL_CHECK_TIMEOUT)
        return outcome is FalCancelOutcome.REQUESTED
    except FalError as exc:
        log.info("cancelling a request at fal failed: %s", exc)
        return False
