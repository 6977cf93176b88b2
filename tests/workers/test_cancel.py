"""✖ Cancel refunds only what fal never ran: a job fal never got, or one still in fal's queue,
is refunded; one fal had started may finish anyway, and then the user gets it and the
charge stays."""

from __future__ import annotations

from core.domain import credits
from core.domain.catalog import catalog
from core.domain.models import Job, JobStatus
from core.domain.users import touch_user
from core.jobs import lifecycle
from core.jobs.cancel import Cancelled, cancel_job
from tests.builders import a_job
from tests.workers.harness import FAL, Worker
from workers.cancellation import cancel_at_fal
from workers.delivery import deliver_job
from workers.submission import submit_job

USER = 7301
PRICE = 3
FREE = 10
RESULT = {"images": [{"url": f"{FAL}/files/out.png"}]}


async def paid_job(worker: Worker) -> Job:
    """A job that took `PRICE` of the user's `FREE` daily credits."""
    async with worker.sessions() as session:
        await touch_user(session, user_id=USER, username=None, first_name=None, language_code="en")
    job = a_job(USER, model=catalog().find("fal-ai/flux/dev"))
    assert await lifecycle.accept(worker.sessions, job, price=PRICE, free_per_day=FREE)
    return job


async def balance(worker: Worker) -> int:
    async with worker.sessions() as session:
        return (await credits.balance_of(session, USER)).total


async def submitted(worker: Worker) -> Job:
    job = await paid_job(worker)
    await submit_job(worker.services, job.id, attempt=1)
    stored = await worker.reload(job)
    assert stored.status == JobStatus.SUBMITTED
    return stored


async def tap_cancel(worker: Worker, job: Job) -> Cancelled:
    resources = worker.services.resources
    return await cancel_job(resources.sessions, resources.redis, await worker.reload(job))


async def test_a_job_fal_never_got_is_cancelled_and_refunded_at_once(worker: Worker) -> None:
    job = await paid_job(worker)
    assert await tap_cancel(worker, job) is Cancelled.NOW
    await submit_job(worker.services, job.id, attempt=1)
    assert worker.fal.accepted == []
    assert (await worker.reload(job)).status == JobStatus.CANCELLED
    assert await balance(worker) == FREE


async def test_a_job_cancelled_while_queued_at_fal_is_refunded_and_told(worker: Worker) -> None:
    job = await submitted(worker)
    assert await tap_cancel(worker, job) is Cancelled.REQUESTED
    assert await balance(worker) == FREE - PRICE  # nothing is given back on the tap alone

    await cancel_at_fal(worker.services, job.id, attempt=1)
    await deliver_job(worker.services, job.id, attempt=1)

    assert worker.fal.cancelled == [job.fal_request_id]
    assert (await worker.reload(job)).status == JobStatus.CANCELLED
    assert await balance(worker) == FREE
    [(chat, notice)] = worker.sender.notices
    assert chat == USER and notice.startswith("✖ Cancelled before it started")


async def test_a_job_fal_had_started_that_completes_is_delivered_and_charged_once(
    worker: Worker,
) -> None:
    job = await submitted(worker)
    assert job.fal_request_id is not None
    worker.fal.statuses[job.fal_request_id] = "IN_PROGRESS"
    assert await tap_cancel(worker, job) is Cancelled.REQUESTED
    await cancel_at_fal(worker.services, job.id, attempt=1)
    assert worker.fal.cancelled == [job.fal_request_id]  # the signal went
    assert (await worker.reload(job)).status == JobStatus.SUBMITTED

    await worker.webhook(job, job.fal_request_id, RESULT)  # the model finished anyway
    await deliver_job(worker.services, job.id, attempt=1)

    assert worker.sender.results == [USER]
    assert (await worker.reload(job)).status == JobStatus.DELIVERED
    assert await balance(worker) == FREE - PRICE
    assert worker.sender.notices == []


async def test_a_started_job_that_fal_then_stops_is_cancelled_and_refunded(
    worker: Worker,
) -> None:
    job = await submitted(worker)
    assert job.fal_request_id is not None
    worker.fal.statuses[job.fal_request_id] = "IN_PROGRESS"
    await tap_cancel(worker, job)
    await cancel_at_fal(worker.services, job.id, attempt=1)

    await worker.error_webhook(job, job.fal_request_id, "request_cancelled")
    await deliver_job(worker.services, job.id, attempt=1)

    assert (await worker.reload(job)).status == JobStatus.CANCELLED
    assert await balance(worker) == FREE
    assert worker.sender.results == []
    [(_, notice)] = worker.sender.notices
    assert notice.startswith("✖ Cancelled before it started")


async def test_a_second_tap_after_the_end_is_too_late(worker: Worker) -> None:
    job = await submitted(worker)
    assert job.fal_request_id is not None
    await worker.webhook(job, job.fal_request_id, RESULT)
    assert await tap_cancel(worker, job) is Cancelled.TOO_LATE
