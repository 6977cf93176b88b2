"""A Redis restart under a running worker, idle or busy claiming jobs: the worker rides it out
instead of exiting, and the next prompt is answered as usual."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq import func
from arq.connections import RedisSettings, create_pool

from core.infra.patches.arq_claims import KadrWorker
from sandbox.control import TelegramSandbox
from sandbox.redis_server import PrivateRedis
from sandbox.stack import Stack
from tests.fake_bot_api import message, post_update


@pytest.fixture
def lone_stack(
    tmp_path: Path, database_url: str, private_redis: PrivateRedis, stack: Stack
) -> Iterator[Stack]:
    """An api and an images worker on a Redis of their own, using the session's stand-ins."""
    lone = Stack(
        tmp_path,
        database_url,
        private_redis.url,
        telegram_port=stack.telegram_port,
        fal_port=stack.fal_port,
        extra_env=stack.extra_env,
    )
    try:
        with lone.starting_together():
            lone.start_api()
            lone.start_worker()
        yield lone
    finally:
        lone.stop()


def prompt(lone: Stack, user_id: int, text: str) -> httpx.Response:
    """The update Telegram would POST for a private text message."""
    update = message(910_000 + user_id, user_id, text)
    return post_update(lone.api_url, update)


def test_a_worker_rides_out_a_redis_restart(
    lone_stack: Stack, private_redis: PrivateRedis, telegram: TelegramSandbox
) -> None:
    telegram.send_message(9101, "/start")  # the stand-in now knows this chat
    telegram.wait_for("sendMessage", chat_id=9101)

    private_redis.restart(down_for=2.0)

    assert prompt(lone_stack, 9101, "a lighthouse after the storm").status_code == 200
    [photo] = telegram.wait_for("sendPhoto", chat_id=9101, timeout=30)
    assert photo["params"]["caption"].startswith("a lighthouse after the storm")
    worker = lone_stack.service("worker").process  # the same one: it never exited
    assert worker is not None and worker.poll() is None, lone_stack.service("worker").tail()


async def _noop(ctx: dict[str, Any]) -> None:
    return None


async def test_a_claim_cut_short_by_redis_gives_its_slot_back(
    private_redis: PrivateRedis,
) -> None:
    """Redis going away mid-claim (in the benchmark: while watching the job's in-progress
    key) ends the claim, not the worker, and the slot it took is free again."""
    pool = await create_pool(RedisSettings.from_dsn(private_redis.url))
    worker = KadrWorker(functions=[func(_noop, name="noop")], redis_pool=pool, max_jobs=2)
    private_redis.stop()
    try:
        await worker.start_jobs([b"job-a", b"job-b"])
        assert worker.job_counter == 0
        for _ in range(3):  # arq's pool of slots is max_jobs + 1; a kept slot would block here
            await asyncio.wait_for(worker.sem.acquire(), timeout=1)
    finally:
        await pool.aclose()
