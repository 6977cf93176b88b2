"""A task meets an outage: it waits it out and goes on, a result Telegram took is never sent
again because the database move after it failed, and a worker's claims die with it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from arq import Retry, func
from arq.connections import RedisSettings, create_pool
from arq.constants import in_progress_key_prefix
from sqlalchemy.exc import OperationalError

from core.domain.models import Job, JobStatus
from core.infra.patches import arq_claims
from core.infra.patches.arq_claims import KadrWorker
from core.jobs import lifecycle
from core.telegram import receipts
from core.telegram.receipts import Sent
from sandbox.redis_server import PrivateRedis
from tests.workers.harness import FAL, Worker
from workers import tasks

RESULT = {"images": [{"url": f"{FAL}/files/out.png"}]}


def database_down() -> OperationalError:
    return OperationalError("UPDATE jobs", {}, ConnectionRefusedError("connection refused"))


def failing_first(calls: int, real: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """`real`, except that its first `calls` calls find the database down."""
    failed = 0

    async def call(*args: Any, **kwargs: Any) -> Any:
        nonlocal failed
        if failed < calls:
            failed += 1
            raise database_down()
        return await real(*args, **kwargs)

    return call


def ctx(worker: Worker) -> dict[str, Any]:
    return {"services": worker.services, "job_try": 1}


async def completed_job(worker: Worker) -> str:
    job = await worker.job()
    await worker.webhook(job, "req-x", RESULT)
    return job.id


async def test_the_database_failing_after_the_send_sends_the_result_once(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = await completed_job(worker)
    monkeypatch.setattr(lifecycle, "mark_delivered", failing_first(2, lifecycle.mark_delivered))

    await tasks.deliver(ctx(worker), job_id)

    assert worker.sender.results == [1]
    stored = await worker.reload(Job(id=job_id))
    assert stored.status == JobStatus.DELIVERED
    assert stored.result is not None and stored.result["telegram_file_ids"] == ["file-id"]
    assert stored.result["telegram_file_kinds"] == ["photo"]


async def test_a_run_that_finds_a_receipt_only_finishes_the_move(worker: Worker) -> None:
    """The run before sent the result and died before the move (SIGKILL, a lost machine)."""
    job_id = await completed_job(worker)
    await worker.services.receipts.keep(job_id, Sent(["sent-before"], ["document"], [5]))

    await tasks.deliver(ctx(worker), job_id)

    assert worker.sender.results == []
    stored = await worker.reload(Job(id=job_id))
    assert stored.status == JobStatus.DELIVERED
    assert stored.result is not None and stored.result["telegram_file_ids"] == ["sent-before"]
    assert stored.result["telegram_file_kinds"] == ["document"]


async def test_a_receipt_kept_before_kinds_were_finishes_the_move_without_kinds(
    worker: Worker,
) -> None:
    """A receipt of the version before kinds were kept (ids only): the move finishes, and
    with no kinds recorded, sharing reads each file's kind from its id."""
    job_id = await completed_job(worker)
    kept = {"file_ids": ["sent-before"], "message_ids": [5]}
    await worker.services.receipts.redis.set(receipts.PREFIX + job_id, json.dumps(kept))

    await tasks.deliver(ctx(worker), job_id)

    assert worker.sender.results == []
    stored = await worker.reload(Job(id=job_id))
    assert stored.status == JobStatus.DELIVERED
    assert stored.result is not None and stored.result["telegram_file_ids"] == ["sent-before"]
    assert stored.result["telegram_file_kinds"] == []


async def test_a_submit_waits_out_a_database_outage_and_goes_on(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = await worker.job()
    monkeypatch.setattr(lifecycle, "start_submit", failing_first(3, lifecycle.start_submit))

    await tasks.submit(ctx(worker), job.id)

    assert len(worker.fal.accepted) == 1
    assert (await worker.reload(job)).status == JobStatus.SUBMITTED


async def test_an_outage_longer_than_the_patience_goes_back_to_the_queue_not_failed(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = await worker.job()
    monkeypatch.setattr(tasks, "OUTAGE_PATIENCE", 0.5)
    monkeypatch.setattr(lifecycle, "start_submit", failing_first(1000, lifecycle.start_submit))

    with pytest.raises(Retry):
        await tasks.submit(ctx(worker), job.id)

    assert worker.fal.accepted == []
    assert (await worker.reload(job)).status == JobStatus.QUEUED


async def test_a_delivery_failing_for_the_database_is_not_a_refusal(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = await completed_job(worker)
    monkeypatch.setattr(tasks, "OUTAGE_PATIENCE", 0.3)
    monkeypatch.setattr(lifecycle, "mark_delivered", failing_first(1000, lifecycle.mark_delivered))

    with pytest.raises(Retry):
        await tasks.deliver(ctx(worker), job_id)

    stored = await worker.reload(Job(id=job_id))
    assert (stored.status, stored.delivery_attempts) == (JobStatus.COMPLETED, 0)
    assert worker.sender.results == [1]


async def _hold(ctx: dict[str, Any]) -> None:
    """A task that runs until it is cancelled, saying when it starts."""
    ctx["started"].put_nowait(ctx["job_id"])
    await asyncio.Event().wait()


async def test_a_dead_workers_claim_expires_and_a_live_worker_takes_the_task_up(
    own_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first worker dies as SIGKILL leaves it: its claim is no longer renewed and nothing
    is cleaned up. A live worker's claim, renewed, outlives its first length."""
    monkeypatch.setattr(arq_claims, "CLAIM_SECONDS", 1)
    monkeypatch.setattr(arq_claims, "RENEW_EVERY", 0.2)
    pool = await create_pool(RedisSettings.from_dsn(own_redis.url))
    await pool.flushdb()
    started: asyncio.Queue[str] = asyncio.Queue()
    options: dict[str, Any] = {
        "functions": [func(_hold, name="hold", timeout=600)],
        "redis_pool": pool,
        "poll_delay": 0.05,
        "handle_signals": False,
        "ctx": {"started": started},
    }
    first, second = KadrWorker(**options), KadrWorker(**options)
    runs = [asyncio.create_task(first.main())]
    try:
        await pool.enqueue_job("hold", _job_id="held")
        assert await asyncio.wait_for(started.get(), timeout=5) == "held"
        await asyncio.sleep(1.5)  # past the first length of the claim: renewed
        assert await pool.pttl(in_progress_key_prefix + "held") > 0

        runs[0].cancel()  # the loop, not the task: dead without a word to Redis
        runs.append(asyncio.create_task(second.main()))
        assert await asyncio.wait_for(started.get(), timeout=5) == "held"
    finally:
        for run in runs:
            run.cancel()
        for held in (*first.tasks.values(), *second.tasks.values()):
            held.cancel()
        await asyncio.gather(
            *runs, *first.tasks.values(), *second.tasks.values(), return_exceptions=True
        )
        await pool.flushdb()
        await pool.aclose()
