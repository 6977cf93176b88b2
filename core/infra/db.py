"""The database engine: one per process, plus the checks that tie it to the migrations."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from core.infra.retry import is_broken_connection

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


class SchemaNotReady(Exception):
    """The database is behind the code's migrations."""


def create_engine(url: str, pool_size: int = 20) -> AsyncEngine:
    """The process's engine; SQLite gets WAL and a busy timeout so api and worker can share it.

    PostgreSQL connections are all kept once opened (no overflow): an "overflow" connection is
    closed as soon as it is returned, and under a steady load that meant a new PostgreSQL
    backend every few handlers. The size is the operator's (`DATABASE_POOL_SIZE`): processes
    × size must stay under the server's `max_connections`.

    No `pool_pre_ping`: with asyncpg it is three round trips (BEGIN, a ping, ROLLBACK) before
    every checkout, a third of the api's CPU per fal webhook. A connection that died with its
    server fails its first statement instead; SQLAlchemy then drops the whole pool's
    connections, so one restart costs one failed statement per process, and every caller
    already treats that as an outage (the consumers wait, fal sends its webhook again, the
    sweeper re-enqueues a failed task's job)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=0)
        event.listen(engine.sync_engine, "handle_error", _drop_broken_connections)
        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30})
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _drop_broken_connections(context: ExceptionContext) -> None:
    """SQLAlchemy takes a connection for dead only when asyncpg says it is closed. One that a
    server crash left mid-operation is not closed, yet every later statement on it fails
    ("cannot switch to state …"): it is taken for dead too, so it leaves the pool with the
    rest of the pool's connections instead of going back to it."""
    if is_broken_connection(context.original_exception):
        context.is_disconnect = True


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _revisions(connection: Connection, url: str) -> tuple[str | None, str | None]:
    current = MigrationContext.configure(connection).get_current_revision()
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    return current, head


async def ensure_migrated(engine: AsyncEngine) -> None:
    """Refuse to serve on a schema the code does not expect."""
    url = engine.url.render_as_string(hide_password=False)
    async with engine.connect() as connection:
        current, head = await connection.run_sync(_revisions, url)
    if not _compatible(current, head):
        raise SchemaNotReady(
            f"database is at migration {current or 'none'}, code needs {head}: run `kadr migrate`"
        )


def _compatible(current: str | None, head: str | None) -> bool:
    """At the code's own migration, or one ahead of it: during a rolling deploy the new
    release migrates first and the old one's processes must still (re)start. Revisions are
    numbered ("0003") so the old code can tell "one ahead" from a migration it has never seen,
    and each migration stays compatible with the release before it (docs/operations.md)."""
    if current == head:
        return True
    if current is None or head is None or not (current.isdigit() and head.isdigit()):
        return False
    return int(current) == int(head) + 1


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def check_schema(url: str) -> None:
    """Open, check and close an engine: the pre-flight of `kadr api` and `kadr worker`."""
    engine = create_engine(url)
    try:
        await ensure_migrated(engine)
    finally:
        await engine.dispose()
