"""Shared fixtures: a fresh PostgreSQL database and Redis db per run, and the real kadr
processes wired to the sandbox stand-ins over HTTP."""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import create_engine
from sandbox.control import TelegramSandbox
from sandbox.stack import Stack

PG_ADMIN_URL = os.environ.get("KADR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_BASE = os.environ.get("KADR_TEST_REDIS", "redis://127.0.0.1:6379")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A database of its own for this run, dropped afterwards."""
    name = f"kadr_test_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """An emptied Redis database; the index is random so parallel runs rarely meet."""
    url = f"{REDIS_BASE}/{random.randint(1, 15)}"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str
) -> Iterator[Stack]:
    """Telegram stand-in, migrated database and `kadr api`, with the webhook registered by
    `kadr set-webhook` as an operator would."""
    stack = Stack(tmp_path_factory.mktemp("stack"), database_url, redis_url)
    try:
        stack.migrate()
        stack.start_telegram()
        stack.start_api()
        stack.run_kadr("set-webhook")
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def telegram(stack: Stack) -> Iterator[TelegramSandbox]:
    sandbox = TelegramSandbox(stack.telegram_url)
    sandbox.reset()
    yield sandbox
    sandbox.close()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
