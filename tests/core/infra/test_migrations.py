"""Migrations run forwards, backwards and forwards again on both supported databases (that
`kadr api` refuses a database the code does not match is in tests/kadr/test_refusals.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from alembic import command
from sqlalchemy import inspect

from core.infra.db import alembic_config, create_engine

TABLES = {"users", "jobs", "ledger", "broadcasts", "referrals", "subscriptions", "result_messages"}


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
    assert _tables(url) == TABLES
    command.downgrade(config, "base")
    assert _tables(url) == set()
    command.upgrade(config, "head")
    assert _tables(url) == TABLES


def test_round_trip_on_sqlite(tmp_path: Path) -> None:
    _round_trip(f"sqlite+aiosqlite:///{tmp_path}/kadr.db")


def test_round_trip_on_postgres(database_url: str) -> None:
    command.downgrade(alembic_config(database_url), "base")
    try:
        _round_trip(database_url)
    finally:
        command.upgrade(alembic_config(database_url), "head")


def test_0006_renames_kind_and_settings_keeping_the_rows(tmp_path: Path) -> None:
    """jobs.kind becomes jobs.mode and users.settings users.preferences, values kept; the
    downgrade gives the old names back."""
    path = tmp_path / "kadr.db"
    config = alembic_config(f"sqlite+aiosqlite:///{path}")
    command.upgrade(config, "0005")
    now = "2026-12-02 12:00:00"
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO users (id, language, settings, banned, created_at, last_seen_at)"
            " VALUES (7, 'en', '{\"images\": 2}', 0, ?, ?)",
            (now, now),
        )
        db.execute(
            "INSERT INTO jobs (id, user_id, chat_id, language, kind, model, prompt, options,"
            " status, deadline_at, created_at, updated_at, delivery_attempts)"
            " VALUES ('j1', 7, 7, 'en', 'edit', 'm', 'p', '{}', 'queued', ?, ?, ?, 0)",
            (now, now, now),
        )
    command.upgrade(config, "0006")
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT preferences FROM users").fetchall() == [('{"images": 2}',)]
        assert db.execute("SELECT mode FROM jobs").fetchall() == [("edit",)]
    command.downgrade(config, "0005")
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT settings FROM users").fetchall() == [('{"images": 2}',)]
        assert db.execute("SELECT kind FROM jobs").fetchall() == [("edit",)]
