"""No job stuck for ever: a completed job whose delivery keeps failing ends failed (told once)
within its attempts and its window, a pile of such jobs does not keep the sweeper from a
newly lost one, and a slow fal cannot stretch a sweep: fal is asked concurrently within a
budget and the jobs past their deadline are failed in bulk."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import SendPhoto
from sqlalchemy import insert, update

from bot.job_messages import failure_text
from core.domain.models import Job, JobStatus, new_job_id, utcnow
from core.infra.retry import RetryLater
from core.infra.url_guard import RefusedURL
from tests.workers.harness import FAL, Worker
from workers import sweeper
from workers.delivery import DELIVERY_ATTEMPTS, DELIVERY_WINDOW, deliver_job
from workers.sweeper import sweep

USER = 7001
RESULT = {"images": [{"url": f"{FAL}/files/out.png"}]}


def refused_photo() -> TelegramBadRequest:
    return TelegramBadRequest(
        method=SendPhoto(chat_id=USER, photo="x"), message="Bad Request: PHOTO_INVALID_DIMENSIONS"
    )


async def insert_jobs(worker: Worker, count: int, status: JobStatus, **values: Any) -> list[str]:
    """`count` jobs as a crash or a poison result leaves them, written in one statement."""
    await worker.job(USER)  # makes the user
    now = utcnow()
    row = {
        "user_id": USER,
        "chat_id": USER,
        "language": "en",
        "mode": "text_to_image",
        "model": "fal-ai/flux/schnell",
        "prompt": "a stuck lantern",
        "options": {},
        "status": status,
        "deadline_at": now + timedelta(minutes=5),
        "created_at": now - timedelta(minutes=5),
        "updated_at": now - timedelta(minutes=5),
        "delivery_attempts": 0,
        **values,
    }
    ids = [new_job_id() for _ in range(count)]
    async with worker.services.resources.engine.begin() as connection:
        await connection.execute(insert(Job), [{**row, "id": job_id} for job_id in ids])
    return ids


async def status_of(worker: Worker, job_id: str) -> tuple[str, str | None]:
    job = await worker.reload(Job(id=job_id))
    return job.status, job.error


async def enqueued(worker: Worker, task: str, job_id: str) -> bool:
    return bool(await worker.services.resources.redis.exists(f"arq:job:{task}:{job_id}"))


async def test_a_poison_completed_job_fails_within_its_attempts_and_is_told_once(
    worker: Worker,
) -> None:
    [job_id] = await insert_jobs(
        worker, 1, JobStatus.COMPLETED, result=RESULT, completed_at=utcnow()
    )
    worker.sender.fail_with = refused_photo()
    for attempt in range(1, DELIVERY_ATTEMPTS):
        with pytest.raises(RetryLater):
            await deliver_job(worker.services, job_id, attempt=attempt)
    await deliver_job(worker.services, job_id, attempt=DELIVERY_ATTEMPTS)
    for attempt in range(3):  # the sweeper and arq keep coming: nothing more is sent
        await deliver_job(worker.services, job_id, attempt=attempt)
    assert await status_of(worker, job_id) == ("failed", "undeliverable")
    assert [chat for chat, _ in worker.sender.notices] == [USER]


async def test_a_refused_result_url_fails_the_job_at_once_and_is_told_once(
    worker: Worker,
) -> None:
    """Not retried: the URL will not become fal's by waiting."""
    [job_id] = await insert_jobs(
        worker, 1, JobStatus.COMPLETED, result=RESULT, completed_at=utcnow()
    )
    worker.sender.fail_with = RefusedURL("host 169.254.169.254 is not fal's")
    for attempt in (1, 2, 3):
        await deliver_job(worker.services, job_id, attempt=attempt)
    assert await status_of(worker, job_id) == ("failed", "result_url_refused")
    assert [chat for chat, _ in worker.sender.notices] == [USER]


async def test_a_refused_job_past_its_delivery_window_fails_in_the_sweep_told_once(
    worker: Worker,
) -> None:
    long_ago = utcnow() - DELIVERY_WINDOW - timedelta(seconds=1)
    ids = await insert_jobs(
        worker,
        3,
        JobStatus.COMPLETED,
        result=RESULT,
        completed_at=long_ago,
        delivery_attempts=1,
    )
    await sweep(worker.services)
    for job_id in ids:
        assert await status_of(worker, job_id) == ("failed", "undeliverable")
        assert await enqueued(worker, "deliver", job_id)
        await deliver_job(worker.services, job_id, attempt=1)
        await deliver_job(worker.services, job_id, attempt=2)
    assert [chat for chat, _ in worker.sender.notices] == [USER] * 3
    assert worker.sender.results == []


async def test_a_result_that_waited_out_outages_past_its_window_is_still_delivered(
    worker: Worker,
) -> None:
    """Telegram never refused it: the time went on outages, and the result was made."""
    long_ago = utcnow() - DELIVERY_WINDOW - timedelta(minutes=5)
    [job_id] = await insert_jobs(
        worker, 1, JobStatus.COMPLETED, result=RESULT, completed_at=long_ago
    )
    await sweep(worker.services)
    assert await status_of(worker, job_id) == ("completed", None)
    assert await enqueued(worker, "deliver", job_id)
    await deliver_job(worker.services, job_id, attempt=1)
    assert await status_of(worker, job_id) == ("delivered", None)
    assert worker.sender.results == [USER]
    assert worker.sender.notices == []


async def test_600_poison_jobs_do_not_keep_the_sweeper_from_a_newly_lost_job(
    worker: Worker,
) -> None:
    recently = utcnow() - timedelta(minutes=5)
    await insert_jobs(
        worker,
        600,
        JobStatus.COMPLETED,
        result=RESULT,
        completed_at=recently,
        updated_at=utcnow() - timedelta(hours=1),
    )
    [lost] = await insert_jobs(worker, 1, JobStatus.QUEUED)
    await sweep(worker.services)
    assert await enqueued(worker, "submit", lost)


async def test_poison_jobs_take_turns_in_the_sweepers_batch(worker: Worker) -> None:
    """Each re-enqueued job waits at the back of the line: the next sweep reaches the rest."""
    old = utcnow() - timedelta(hours=1)
    ids = await insert_jobs(
        worker, 600, JobStatus.COMPLETED, result=RESULT, completed_at=utcnow(), updated_at=old
    )
    now = utcnow()
    assert await sweep(worker.services, now=now) == 500
    assert await sweep(worker.services, now=now + timedelta(seconds=1)) == 100
    assert all([await enqueued(worker, "deliver", job_id) for job_id in ids])


async def submitted_jobs(worker: Worker, count: int, deadline_at: datetime) -> list[str]:
    ids = await insert_jobs(
        worker, count, JobStatus.SUBMITTED, check_at=utcnow(), deadline_at=deadline_at
    )
    urls: dict[str, Any] = {}
    async with worker.services.resources.engine.begin() as connection:
        for job_id in ids:
            base = f"{FAL}/fal-ai/flux/requests/{job_id}"
            urls[job_id] = {
                "fal_request_id": job_id,
                "fal_status_url": f"{base}/status",
                "fal_response_url": base,
                "fal_cancel_url": f"{base}/cancel",
            }
            await connection.execute(update(Job).where(Job.id == job_id).values(**urls[job_id]))
    return ids


async def test_a_slow_fal_does_not_stretch_a_sweep_and_dead_jobs_fail_in_bulk(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweeper, "FAL_CHECKS_BUDGET", 0.5)
    worker.fal.status_delay = 3600.0  # fal never answers: only the sweep's budget ends it
    past = utcnow() - timedelta(seconds=1)
    dead = await submitted_jobs(worker, 50, deadline_at=past)
    async with asyncio.timeout(60):  # a hang guard, not a speed check: unbounded is an hour
        await sweep(worker.services)
    assert worker.fal.status_peak > 1, "fal was asked one job at a time"
    for job_id in dead:
        assert await status_of(worker, job_id) == ("failed", "timeout")
        assert await enqueued(worker, "deliver", job_id)


async def test_a_completed_status_carrying_an_error_ends_the_job_with_that_error(
    worker: Worker,
) -> None:
    [job_id] = await submitted_jobs(worker, 1, deadline_at=utcnow() + timedelta(minutes=1))
    worker.fal.statuses[job_id] = "COMPLETED"
    worker.fal.status_errors[job_id] = {
        "error": "The content could not be processed",
        "error_type": "content_policy_violation",
    }
    await sweep(worker.services)
    assert await status_of(worker, job_id) == ("failed", "content_policy_violation")
    await deliver_job(worker.services, job_id, attempt=1)
    [(chat, text)] = worker.sender.notices
    assert chat == USER and text == failure_text(await worker.reload(Job(id=job_id)))
    assert "policy" in text.lower() or "content" in text.lower(), text


async def test_a_completed_job_whose_result_fal_cannot_hand_over_is_delivered_not_timed_out(
    worker: Worker,
) -> None:
    """Past its deadline, fal says COMPLETED but its result answers 503 for a while."""
    [job_id] = await submitted_jobs(worker, 1, deadline_at=utcnow() - timedelta(seconds=1))
    worker.fal.statuses[job_id] = "COMPLETED"
    worker.fal.results_unavailable = 2
    await sweep(worker.services)
    assert await status_of(worker, job_id) == ("completed", None)
    with pytest.raises(RetryLater):
        await deliver_job(worker.services, job_id, attempt=1)
    await deliver_job(worker.services, job_id, attempt=2)
    assert await status_of(worker, job_id) == ("delivered", None)
    assert worker.sender.results == [USER]


async def test_a_job_fal_is_still_running_past_its_deadline_is_asked_to_stop_not_refunded(
    worker: Worker,
) -> None:
    """fal's cancel is only a signal to a running model, which may finish and is billed: the
    result is delivered if it comes; only past the grace is the job failed."""
    [running, hopeless] = await submitted_jobs(
        worker, 2, deadline_at=utcnow() - timedelta(seconds=1)
    )
    async with worker.services.resources.engine.begin() as connection:
        past_grace = utcnow() - sweeper.RUNNING_GRACE - timedelta(seconds=1)
        await connection.execute(
            update(Job).where(Job.id == hopeless).values(deadline_at=past_grace)
        )
    worker.fal.statuses |= {running: "IN_PROGRESS", hopeless: "IN_PROGRESS"}
    await sweep(worker.services)
    assert await status_of(worker, running) == ("submitted", None)
    assert await status_of(worker, hopeless) == ("failed", "timeout")
    assert sorted(worker.fal.cancelled) == sorted([running, hopeless])

    await worker.webhook(await worker.reload(Job(id=running)), running, RESULT)
    await deliver_job(worker.services, running, attempt=1)
    assert await status_of(worker, running) == ("delivered", None)


async def test_a_late_job_that_fal_finished_is_recorded_as_if_its_webhook_came(
    worker: Worker,
) -> None:
    [job_id] = await submitted_jobs(worker, 1, deadline_at=utcnow() + timedelta(minutes=1))
    worker.fal.statuses[job_id] = "COMPLETED"
    await sweep(worker.services)
    assert await status_of(worker, job_id) == ("completed", None)
    assert await enqueued(worker, "deliver", job_id)
