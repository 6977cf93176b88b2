"""A PostgreSQL restart seen from kadr's pool (core.infra.db keeps no pre-ping): the backends of the
pool are killed as a restart kills them; the first statement after it fails as an outage the
consumers wait out, and the next one works on a fresh connection."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core.infra.db import create_engine
from core.infra.retry import is_outage
from tests.conftest import PG_ADMIN_URL


async def kill_backends(database: str) -> int:
    connection = await asyncpg.connect(PG_ADMIN_URL)
    try:
        killed = await connection.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await connection.close()
    return len(killed)


async def test_a_restart_costs_one_statement_that_counts_as_an_outage(
    own_database_url: str,
) -> None:
    engine = create_engine(own_database_url)
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT 1")) == 1
        assert await kill_backends(engine.url.database or "") == 1

        with pytest.raises(DBAPIError) as failed:
            async with engine.connect() as connection:
                await connection.scalar(text("SELECT 1"))
        assert is_outage(failed.value)

        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT 2")) == 2
    finally:
        await engine.dispose()


async def test_a_connection_left_mid_operation_leaves_the_pool(
    own_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """asyncpg does not call such a connection closed, so SQLAlchemy would hand it out again
    and every statement on it would fail the same way; it is replaced instead."""
    engine = create_engine(own_database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            before = await connection.scalar(text("SELECT pg_backend_pid()"))
            adapted = (await connection.get_raw_connection()).dbapi_connection

            async def stuck(*_: object) -> None:
                raise asyncpg.exceptions.InternalClientError(
                    "cannot switch to state 15; another operation (2) is in progress"
                )

            with monkeypatch.context() as patch, pytest.raises(Exception) as failed:
                patch.setattr(type(adapted), "_prepare", stuck)
                await connection.scalar(text("SELECT 1"))
        assert is_outage(failed.value)

        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT pg_backend_pid()")) != before
    finally:
        await engine.dispose()
