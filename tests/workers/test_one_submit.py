"""One submit per job at fal, whatever fails (fal has no idempotency key and bills each one):
after an outcome that leaves open whether fal got the request, the job is never sent again
and its webhook delivers it; only a request fal certainly never saw is sent again; a request
whose job has moved on is cancelled at fal; a job whose submit left no trace fails at its
deadline with one notice."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from prometheus_client import REGISTRY

from core.domain import credits
from core.domain.catalog import catalog
from core.domain.users import touch_user
from core.infra.retry import RetryLater
from core.jobs import lifecycle
from core.jobs.queue import queue_of
from tests.builders import a_job
from tests.workers.harness import (
    Worker,
    after_accepting,
    answering,
    hanging_after_accepting,
    refusing_connection,
)
from workers.delivery import deliver_job
from workers.submission import submit_job
from workers.sweeper import sweep

AMBIGUOUS = {
    "accepted, then the connection dropped": after_accepting(httpx.RemoteProtocolError),
    "accepted, answer slower than the client timeout": after_accepting(httpx.ReadTimeout),
    "accepted, the connection reset": after_accepting(httpx.ReadError),
    "a 200 without the request's URLs": answering(
        httpx.Response(200, json={"request_id": "req-0"}), accepted=True
    ),
}


async def submit(worker: Worker, job_id: str, attempt: int = 1) -> None:
    await submit_job(worker.services, job_id, attempt=attempt)


async def submits_enqueued(worker: Worker, mode: str) -> int:
    redis = worker.services.resources.redis
    return int(await redis.zcard(queue_of(mode)))


@pytest.mark.parametrize("fault", list(AMBIGUOUS), ids=list(AMBIGUOUS))
async def test_an_ambiguous_submit_is_never_sent_again_and_its_webhook_delivers(
    worker: Worker, fault: str
) -> None:
    job = await worker.job()
    worker.fal.next.append(AMBIGUOUS[fault])
    await submit(worker, job.id)
    for attempt in (2, 3):  # arq's retry, the sweeper's re-enqueue, a restarted worker
        await submit(worker, job.id, attempt)
    await sweep(worker.services, now=job.created_at + timedelta(minutes=3))
    assert await submits_enqueued(worker, job.mode) == 0
    assert worker.fal.accepted == ["req-0"]

    await worker.webhook(job, "req-0")
    await deliver_job(worker.services, job.id, attempt=1)
    assert (await worker.reload(job)).status == "delivered"
    assert worker.sender.results == [job.chat_id]
    assert worker.fal.accepted == ["req-0"]


async def test_a_submit_cancelled_mid_call_is_not_sent_again(worker: Worker) -> None:
    """SIGTERM (arq cancels the task and runs it again) or arq's task timeout."""
    job = await worker.job()
    worker.fal.next.append(hanging_after_accepting())
    task = asyncio.create_task(submit(worker, job.id))
    await worker.fal.took.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await submit(worker, job.id, 2)
    assert worker.fal.accepted == ["req-0"]
    await worker.webhook(job, "req-0")
    await deliver_job(worker.services, job.id, attempt=1)
    assert worker.sender.results == [job.chat_id]


@pytest.mark.parametrize(
    "refusal",
    [refusing_connection(), answering(httpx.Response(503, json={"detail": "busy"}))],
    ids=["connection refused", "503 from fal"],
)
async def test_a_submit_fal_never_took_is_sent_again(worker: Worker, refusal: object) -> None:
    job = await worker.job()
    worker.fal.next.append(refusal)  # type: ignore[arg-type]
    with pytest.raises(RetryLater):
        await submit(worker, job.id)
    await submit(worker, job.id, 2)
    stored = await worker.reload(job)
    assert (stored.status, stored.fal_request_id) == ("submitted", "req-0")
    assert worker.fal.accepted == ["req-0"]


@pytest.mark.parametrize("ending", ["cancel", "fail"])
async def test_a_request_whose_job_moved_on_meanwhile_is_cancelled_at_fal(
    worker: Worker, ending: str
) -> None:
    job = await worker.job()

    async def end_the_job_first(fal: object, request: httpx.Request) -> httpx.Response:
        if ending == "cancel":
            assert await lifecycle.cancel(worker.sessions, job)
        else:
            assert await lifecycle.fail(worker.sessions, job, "timeout")
        return worker.fal.accept(request)

    worker.fal.next.append(end_the_job_first)  # type: ignore[arg-type]
    await submit(worker, job.id)
    assert worker.fal.cancelled == ["req-0"]


async def test_a_request_that_already_completed_its_job_is_not_cancelled(worker: Worker) -> None:
    """The webhook can beat the submit's own commit: that request is the job's, not nobody's."""
    job = await worker.job()

    async def webhook_first(fal: object, request: httpx.Request) -> httpx.Response:
        answer = worker.fal.accept(request)
        await worker.webhook(job, "req-0")
        return answer

    worker.fal.next.append(webhook_first)  # type: ignore[arg-type]
    await submit(worker, job.id)
    assert (await worker.reload(job)).status == "completed"
    assert worker.fal.cancelled == []


async def test_a_submit_that_left_no_trace_fails_at_its_deadline_with_one_notice(
    worker: Worker,
) -> None:
    job = await worker.job()
    worker.fal.next.append(after_accepting(httpx.ReadTimeout))
    await submit(worker, job.id)
    past_deadline = job.deadline_at + timedelta(seconds=1)
    for _ in range(2):
        await sweep(worker.services, now=past_deadline)
        await deliver_job(worker.services, job.id, attempt=1)
    stored = await worker.reload(job)
    assert (stored.status, stored.error) == ("failed", "timeout")
    assert [chat for chat, _ in worker.sender.notices] == [job.chat_id]
    assert worker.fal.accepted == ["req-0"]


def not_found_submits() -> float:
    labels = {"op": "submit", "outcome": "not_found"}
    return REGISTRY.get_sample_value("kadr_fal_calls_total", labels) or 0.0


async def test_a_model_fal_does_not_have_fails_its_job_at_once_and_refunds_it(
    worker: Worker,
) -> None:
    """A retired or mistyped model: fal answers the submit 404, the job fails on that first
    try (no retries that could not help), the user is told why and gets the credits back."""
    async with worker.sessions() as session:
        await touch_user(session, user_id=7, username=None, first_name=None, language_code="en")
    job = a_job(7, model=catalog().find("fal-ai/flux/dev"))
    assert await lifecycle.accept(worker.sessions, job, price=3, free_per_day=10)
    before = not_found_submits()
    worker.fal.next.append(
        answering(httpx.Response(404, json={"detail": "Application 'flux/dev' not found"}))
    )
    await submit(worker, job.id)
    await deliver_job(worker.services, job.id, attempt=1)

    stored = await worker.reload(job)
    assert (stored.status, stored.error) == ("failed", "model_unavailable")
    [(chat, notice)] = worker.sender.notices
    assert chat == job.chat_id and notice.startswith("🛠 This model is not available")
    async with worker.sessions() as session:
        assert (await credits.balance_of(session, 7)).total == 10
    assert worker.fal.accepted == []
    assert not_found_submits() == before + 1
