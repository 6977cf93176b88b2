"""Which database a process agrees to start on: its own migration, or one ahead during a
rolling deploy (the new release migrated first); never behind, never further ahead."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from core.infra.db import SchemaNotReady, alembic_config, create_engine, ensure_migrated


async def at_revision(path: Path, revision: str | None) -> None:
    """A migrated SQLite database whose recorded revision is then set to `revision`."""
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
    engine = create_engine(url)
    async with engine.begin() as connection:
        if revision is None:
            await connection.execute(text("DELETE FROM alembic_version"))
        else:
            await connection.execute(
                text("UPDATE alembic_version SET version_num = :r"), {"r": revision}
            )
    try:
        await ensure_migrated(engine)
    finally:
        await engine.dispose()


def head() -> int:
    versions = Path(__file__).resolve().parents[3] / "migrations" / "versions"
    return max(int(p.name[:4]) for p in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))


@pytest.mark.parametrize("ahead", [0, 1])
async def test_starts_at_its_migration_or_one_ahead(tmp_path: Path, ahead: int) -> None:
    await at_revision(tmp_path / "kadr.db", f"{head() + ahead:04d}")


@pytest.mark.parametrize("revision", ["behind", "two ahead", "unknown", None])
async def test_refuses_anything_else(tmp_path: Path, revision: str | None) -> None:
    numbers = {"behind": f"{head() - 1:04d}", "two ahead": f"{head() + 2:04d}", "unknown": "abc1"}
    with pytest.raises(SchemaNotReady, match="run `kadr migrate`"):
        await at_revision(tmp_path / "kadr.db", numbers.get(revision or ""))
