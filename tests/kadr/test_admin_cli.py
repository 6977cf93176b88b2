"""The admin commands from the operator's shell: `kadr grant`, `kadr ban`, `kadr unban` and
`kadr stats` work on the database and Redis alone, and name an unknown user in one line."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import redis.asyncio as aioredis
from alembic import command

from core.domain import credits
from core.domain.bans import BANNED_KEY
from core.domain.models import User
from core.domain.users import touch_user
from core.infra.db import alembic_config, create_engine, session_factory
from sandbox.redis_server import PrivateRedis
from sandbox.stack import KADR

USER = 6601


async def _prepare(url: str) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
    engine = create_engine(url)
    async with session_factory(engine)() as session:
        await touch_user(session, user_id=USER, username=None, first_name=None, language_code="en")
    await engine.dispose()


async def _state(url: str, redis_url: str) -> tuple[int, bool, bool]:
    engine = create_engine(url)
    async with session_factory(engine)() as session:
        balance = await credits.balance_of(session, USER)
        user = await session.get(User, USER)
    await engine.dispose()
    client = aioredis.Redis.from_url(redis_url)
    cached = bool(await client.sismember(BANNED_KEY, str(USER)))  # type: ignore[misc]
    await client.aclose()
    assert user is not None
    return balance.total, user.banned, cached


def _kadr(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KADR, *args], env=env, cwd=cwd, capture_output=True, text=True)


async def test_grant_ban_unban_and_stats_from_the_shell(
    tmp_path: Path, own_redis: PrivateRedis
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/kadr.db"
    await _prepare(url)
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": url, "REDIS_URL": own_redis.url}

    granted = await asyncio.to_thread(_kadr, env, tmp_path, "grant", str(USER), "20")
    assert granted.stdout.strip() == f"kadr: 20 credits given to user {USER}", granted.stderr
    unknown = await asyncio.to_thread(_kadr, env, tmp_path, "grant", "999", "5")
    assert (unknown.returncode, unknown.stderr.strip().splitlines()[-1]) == (
        1,
        "kadr: user 999 has never written to the bot",
    )
    banned = await asyncio.to_thread(_kadr, env, tmp_path, "ban", str(USER))
    assert banned.returncode == 0, banned.stderr
    assert await _state(url, own_redis.url) == (20, True, True)
    unbanned = await asyncio.to_thread(_kadr, env, tmp_path, "unban", str(USER))
    assert unbanned.returncode == 0, unbanned.stderr
    assert await _state(url, own_redis.url) == (20, False, False)

    shown = await asyncio.to_thread(_kadr, env, tmp_path, "stats")
    assert shown.stdout.startswith("📊 Today (UTC) · users: 1\n"), shown.stderr
    assert "Credits spent: 0 · bought: 0" in shown.stdout
