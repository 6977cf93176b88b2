"""Migrations run forwards, backwards and forwards again on both supported databases, and
`kadr api` refuses a database the code does not match."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from alembic import command
from sqlalchemy import inspect

from core.db import alembic_config, create_engine
from sandbox.stack import KADR, TEST_SECRET, TEST_TOKEN


def _tables(url: str) -> set[str]:
    async def inspect_tables() -> set[str]:
        engine = create_engine(url)
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        await engine.dispose()
        return names - {"alembic_version"}

    return asyncio.run(inspect_tables())


def _round_trip(url: str) -> None:
    config = alembic_config(url)
    command.upgrade(config, "head")
    assert _tables(url) == {"users", "jobs", "ledger", "broadcasts"}
    command.downgrade(config, "base")
    assert _tables(url) == set()
    command.upgrade(config, "head")
    assert _tables(url) == {"users", "jobs", "ledger", "broadcasts"}


def test_round_trip_on_sqlite(tmp_path: Path) -> None:
    _round_trip(f"sqlite+aiosqlite:///{tmp_path}/kadr.db")


def test_round_trip_on_postgres(database_url: str) -> None:
    command.downgrade(alembic_config(database_url), "base")
    try:
        _round_trip(database_url)
    finally:
        command.upgrade(alembic_config(database_url), "head")


def test_api_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "TELEGRAM_BOT_TOKEN": TEST_TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": TEST_SECRET,
        "PUBLIC_URL": "http://127.0.0.1:1",
    }
    result = subprocess.run([*KADR, "api"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1
    assert "database is at migration none" in result.stderr
    assert "run `kadr migrate`" in result.stderr
    assert "Traceback" not in result.stderr
