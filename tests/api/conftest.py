"""The api's routes in process, on the module's own migrated PostgreSQL and Redis: the
configuration they read and the Redis client their app holds."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from arq.connections import ArqRedis

from core.infra.config import Config
from core.resources import create_redis
from sandbox.redis_server import PrivateRedis
from sandbox.stack import TEST_SECRET, TEST_TOKEN


@pytest.fixture(scope="module")
def database_kind() -> str:
    """`sessions` open the module's PostgreSQL database, the one `config` names."""
    return "postgresql"


@pytest.fixture
def config(request: pytest.FixtureRequest, migrated_url: str, own_redis: PrivateRedis) -> Config:
    """kadr's configuration on the module's database and Redis, with the settings its
    `CONFIG` (a module attribute) names on top."""
    return Config(
        _env_file=None,  # type: ignore[call-arg]
        TELEGRAM_BOT_TOKEN=TEST_TOKEN,
        TELEGRAM_WEBHOOK_SECRET=TEST_SECRET,
        PUBLIC_URL="https://kadr.example",
        DATABASE_URL=migrated_url,
        REDIS_URL=own_redis.url,
        **getattr(request.module, "CONFIG", {}),
    )


@pytest.fixture
async def arq_redis(config: Config) -> AsyncIterator[ArqRedis]:
    """A client of the module's Redis as kadr opens it, emptied before and after the test."""
    redis = create_redis(config.REDIS_URL)
    await redis.flushdb()
    yield redis
    await redis.flushdb()
    await redis.aclose()
