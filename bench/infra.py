"""A fresh PostgreSQL database per benchmark stack: the jobs table is what the results are
read from. (Its private Redis is sandbox.redis_server's.)
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import asyncpg

PG_ADMIN_URL = os.environ.get("KADR_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
#: The PostgreSQL server may be shared (tests running beside the benchmark): when it is full,
#: the benchmark's own reads wait for a free connection slot instead of breaking the run.
CONNECT_PATIENCE = 60.0
FULL = (asyncpg.TooManyConnectionsError, asyncpg.CannotConnectNowError)


async def connect(url: str) -> asyncpg.Connection:
    deadline = time.monotonic() + CONNECT_PATIENCE
    while True:
        try:
            return await asyncpg.connect(url)
        except FULL:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _admin(sql: str) -> None:
    connection = await connect(PG_ADMIN_URL)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def create_database() -> tuple[str, str]:
    """A new, empty database; returns (its name, its SQLAlchemy asyncpg URL)."""
    name = f"kadr_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return name, f"{base}/{name}"


def drop_database(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def plain_url(sqlalchemy_url: str) -> str:
    """asyncpg wants postgresql://, SQLAlchemy postgresql+asyncpg://."""
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://")
