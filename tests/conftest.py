"""Shared fixtures: a fresh PostgreSQL database and Redis db per run, and the real kadr
processes wired to the sandbox stand-ins over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis
import redis.asyncio as aioredis
from alembic import command
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.domain.catalog import DEFAULT_PATH as DEFAULT_CATALOG
from core.infra.db import alembic_config, create_engine, session_factory
from sandbox.asgi import serve
from sandbox.control import FalSandbox, TelegramSandbox
from sandbox.fal.app import create_app as create_fal_app
from sandbox.redis_server import PrivateRedis
from sandbox.stack import Stack
from sandbox.telegram.testing import StandIn, telegram_stand_in

PG_ADMIN_URL = os.environ.get("KADR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_BASE = os.environ.get("KADR_TEST_REDIS", "redis://127.0.0.1:6379")

TESTS = Path(__file__).parent
#: The marker of each layer (registered in pyproject.toml), by the folder its tests live in:
#: `pytest -m fast` runs the in-process layer alone.
LAYERS = {
    "api": "fast",
    "bot": "fast",
    "core": "fast",
    "workers": "fast",
    "kadr": "cli",
    "sandbox": "sandbox",
    "deploy": "deploy",
    "e2e": "e2e",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.relative_to(TESTS).parts[0] if item.path.is_relative_to(TESTS) else ""
        if folder in LAYERS:
            item.add_marker(LAYERS[folder])


@contextlib.contextmanager
def _database(prefix: str) -> Iterator[str]:
    """A PostgreSQL database made for the caller and dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A database of its own for this run."""
    with _database("kadr_test") as url:
        yield url


@pytest.fixture(scope="module")
def own_database_url() -> Iterator[str]:
    """A database of the module's own stack: the shared stack's sweeper must never find (and
    re-enqueue into its own Redis) the jobs made there."""
    with _database("kadr_own") as url:
        yield url


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    """A redis-server of the module's own: kadr's keys (the inbox, the send limiter) have
    fixed names, and the shared stack's `kadr worker` consumes and sends through the
    session's Redis db."""
    server = PrivateRedis(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(name="redis")
async def redis_client(own_redis: PrivateRedis) -> AsyncIterator[aioredis.Redis]:
    """A client of the module's own Redis, emptied before and after the test."""
    client = aioredis.Redis.from_url(own_redis.url)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """An emptied Redis database; the index is random so parallel runs rarely meet."""
    url = f"{REDIS_BASE}/{random.randint(1, 15)}"
    redis.Redis.from_url(url).flushdb()
    return url


#: Timings shortened so sweeper paths run within a test: check a submitted job after 9 s
#: without a webhook, give up on it after 30 s.
FAST_CATALOG_TIMINGS = {"check_after_minutes": "0.15", "deadline_minutes": "0.5"}


def fast_catalog(path: Path) -> Path:
    text = DEFAULT_CATALOG.read_text()
    for key, value in FAST_CATALOG_TIMINGS.items():
        text = re.sub(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.MULTILINE)
    path.write_text(text)
    return path


@contextlib.contextmanager
def deployment(
    workdir: Path, database_url: str, redis_url: str, env: dict[str, str], *telegram_args: str
) -> Iterator[Stack]:
    """A whole deployment (both stand-ins, migrated database, `kadr api`, one `kadr worker`,
    the webhook registered) with `env` on top of the tests' own configuration, stopped after."""
    stack = Stack(workdir, database_url, redis_url, extra_env={"WORKER_METRICS_PORT": "0", **env})
    try:
        stack.start_deployment(*telegram_args)
        yield stack
    finally:
        stack.stop()


@contextlib.contextmanager
def telegram_of(stack: Stack) -> Iterator[TelegramSandbox]:
    """A control of the stack's Telegram stand-in, reset before and its faults cleared after."""
    sandbox = TelegramSandbox(stack.telegram_url)
    sandbox.reset()
    try:
        yield sandbox
    finally:
        sandbox.clear_faults()
        sandbox.close()


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str
) -> Iterator[Stack]:
    """The whole deployment: both stand-ins, migrated database, `kadr api` and one
    `kadr worker` (every queue and the update inbox), with the webhook registered by
    `kadr set-webhook` as an operator would. Its users can pay for anything: what credits
    refuse is tested on a stack of its own (tests/e2e/test_credits.py)."""
    workdir = tmp_path_factory.mktemp("stack")
    env = {
        "FREE_CREDITS_PER_DAY": "1000000",
        "KADR_CATALOG": str(fast_catalog(workdir / "catalog.toml")),
        "SWEEP_INTERVAL": "1",
        "SWEEP_STALE_AFTER": "3",
    }
    # The stand-in trusts photo URLs instead of downloading them: fetching makes the fal
    # stand-in draw every picture, which starves this 2-core machine and blurs what the tests
    # measure. Telegram refusing a URL is injected where it matters.
    with deployment(workdir, database_url, redis_url, env, "--no-fetch-urls") as stack:
        yield stack


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of the test's own, so it can be stopped and started again."""
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()


def _stack_of(request: pytest.FixtureRequest) -> Stack:
    """The deployment a test's module runs against: the shared `stack`, or the fixture its
    `STACK` names (a stack of the module's own)."""
    stack: Stack = request.getfixturevalue(getattr(request.module, "STACK", "stack"))
    return stack


@pytest.fixture
def telegram(request: pytest.FixtureRequest) -> Iterator[TelegramSandbox]:
    """The control of the deployment's Telegram stand-in (see `_stack_of`)."""
    with telegram_of(_stack_of(request)) as sandbox:
        yield sandbox


@pytest.fixture
def fal(request: pytest.FixtureRequest) -> Iterator[FalSandbox]:
    """The control of the deployment's fal stand-in (see `_stack_of`), reset around the test."""
    sandbox = FalSandbox(_stack_of(request).fal_url)
    sandbox.reset()
    yield sandbox
    sandbox.reset()
    sandbox.close()


@pytest.fixture
async def local_telegram() -> AsyncIterator[StandIn]:
    """A Telegram stand-in of the test's own, served in process (no deployment around it)."""
    async with telegram_stand_in() as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
async def local_fal(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """The base URL of a fal stand-in of the module's own, served in process. A request stays
    in progress `FAL_LATENCY` seconds (a module attribute; 0.05 unless set)."""
    async with serve(create_fal_app(latency=getattr(request.module, "FAL_LATENCY", 0.05))) as url:
        yield url


Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(scope="module")
def migrated_url(own_database_url: str) -> str:
    """The module's own PostgreSQL database, migrated."""
    command.upgrade(alembic_config(own_database_url), "head")
    return own_database_url


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, copied for each test that wants one (copying is far cheaper
    than running the migrations again)."""
    path = tmp_path_factory.mktemp("sqlite") / "migrated.db"
    command.upgrade(alembic_config(f"sqlite+aiosqlite:///{path}"), "head")
    return path


@pytest.fixture(scope="module")
def database_kind() -> str:
    """Which database `sessions` open: SQLite unless the module parametrises this name, e.g.
    `pytest.mark.parametrize("database_kind", ["postgresql"], scope="module")`."""
    return "sqlite"


@pytest.fixture
def database(
    request: pytest.FixtureRequest, database_kind: str, migrated_sqlite: Path, tmp_path: Path
) -> str:
    """The URL of a migrated database: SQLite of the test's own, or the module's PostgreSQL
    database (`migrated_url`)."""
    if database_kind == "postgresql":
        return str(request.getfixturevalue("migrated_url"))
    path = tmp_path / "kadr.db"
    shutil.copyfile(migrated_sqlite, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def sessions(database: str) -> AsyncIterator[Sessions]:
    """Sessions of `database`, as kadr's processes open them."""
    engine = create_engine(database)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
