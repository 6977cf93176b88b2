"""A PostgreSQL restart seen from kadr's pool (core.db keeps no pre-ping): the backends of the
pool are killed as a restart kills them; the first statement after it fails as an outage the
consumers wait out, and the next one works on a fresh connection."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core.db import create_engine
from tests.conftest import PG_ADMIN_URL
from workers.updates import is_outage


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
