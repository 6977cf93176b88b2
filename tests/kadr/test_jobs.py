"""`kadr jobs` against a migrated database and a real Redis: the failed jobs are listed, one
job is shown in full, and a failed job that has its result is delivered again with a fresh
window, while one without a result is left alone."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from arq.connections import ArqRedis
from redis.asyncio import Redis

from core.domain.models import Job, JobStatus
from core.domain.users import touch_user
from core.jobs import lifecycle
from core.jobs.queries import get_job
from core.jobs.queue import queue_of
from core.resources import create_redis
from kadr import jobs as tools
from sandbox.redis_server import PrivateRedis
from tests.builders import a_job
from tests.conftest import Sessions

USER = 5151


@pytest.fixture
async def arq(own_redis: PrivateRedis, redis: Redis) -> AsyncIterator[ArqRedis]:
    client = create_redis(own_redis.url)
    yield client
    await client.aclose()


async def failed_job(sessions: Sessions, *, with_result: bool) -> Job:
    async with sessions() as session:
        await touch_user(session, user_id=USER, username=None, first_name=None, language_code="en")
    job = a_job(USER, prompt="a kite")
    assert await lifecycle.accept(sessions, job)
    if with_result:
        assert await lifecycle.mark_completed(sessions, job.id, {"images": [{"url": "https://x"}]})
    assert await lifecycle.fail(sessions, job, "undeliverable", "chat migrated", notified=True)
    return job


async def test_failed_jobs_are_listed_and_one_is_shown_in_full(sessions: Sessions) -> None:
    job = await failed_job(sessions, with_result=False)
    listing = await tools.listing(sessions, stuck=False, hours=1)
    assert job.id in listing and "undeliverable" in listing
    shown = await tools.show(sessions, job.id)
    assert f"id:                 {job.id}" in shown
    assert "error_detail:       chat migrated" in shown
    assert await tools.listing(sessions, stuck=True, hours=1) == "none"


async def test_a_failed_result_is_delivered_again_with_a_fresh_window(
    sessions: Sessions, arq: ArqRedis, redis: Redis
) -> None:
    job = await failed_job(sessions, with_result=True)
    assert "delivery enqueued" in await tools.redeliver(sessions, arq, job.id)
    async with sessions() as session:
        reopened = await get_job(session, job.id)
    assert reopened is not None
    assert (reopened.status, reopened.delivery_attempts, reopened.notified_at) == (
        JobStatus.COMPLETED,
        0,
        None,
    )
    queued = await redis.zrange(queue_of(job.mode), 0, -1)
    assert queued == [f"deliver:{job.id}".encode()]


async def test_a_failed_job_without_a_result_is_not_reopened(
    sessions: Sessions, arq: ArqRedis, redis: Redis
) -> None:
    job = await failed_job(sessions, with_result=False)
    assert "nothing to deliver" in await tools.redeliver(sessions, arq, job.id)
    assert await redis.zrange(queue_of(job.mode), 0, -1) == []
