"""Fixtures of the in-process worker (tests/workers/harness.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

import httpx
import pytest
from aiogram import Bot
from sqlalchemy import text

from core.fal.client import FalClient
from core.infra.config import Config
from core.infra.db import create_engine, session_factory
from core.resources import Resources, create_redis
from core.telegram.limits import TelegramLimiter
from core.telegram.outbox import Outbox
from core.telegram.receipts import Receipts
from core.telegram.sender import ResultSender
from sandbox.redis_server import PrivateRedis
from tests.workers.harness import FAL, FakeFal, FakeSender, Worker
from workers.services import Services


@pytest.fixture
async def worker(migrated_url: str, own_redis: PrivateRedis) -> AsyncIterator[Worker]:
    """A Redis of the module's own: the shared stack's `kadr worker` would take (and run)
    the tasks these tests enqueue from the session's Redis."""
    engine = create_engine(migrated_url)
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE jobs, users CASCADE"))
    redis = create_redis(own_redis.url)
    await redis.flushdb()
    config = Config(
        PUBLIC_URL="https://kadr.test",
        FAL_KEY="test-key",
        FAL_QUEUE_URL=FAL,
        FAL_REST_URL=FAL,
        TELEGRAM_BOT_TOKEN="42:TESTTESTTESTTESTTESTTEST",
        SWEEP_STALE_AFTER=60,
    )
    fal = FakeFal()
    http = httpx.AsyncClient(transport=httpx.MockTransport(fal))
    bot = Bot(config.TELEGRAM_BOT_TOKEN)
    resources = Resources(
        config=config,
        engine=engine,
        sessions=session_factory(engine),
        redis=redis,
        http=http,
        outbox=Outbox(bot),
        limiter=TelegramLimiter(redis),
    )
    sender = FakeSender()
    services = Services(
        resources=resources,
        fal=FalClient(http, key=config.FAL_KEY, queue_url=FAL, rest_url=FAL),
        sender=cast(ResultSender, sender),
        receipts=Receipts(redis),
    )
    yield Worker(services, fal, sender)
    await redis.flushdb()
    await redis.aclose()
    await http.aclose()
    await bot.session.close()
    await engine.dispose()
