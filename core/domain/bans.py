"""Banned users: the `banned` column is the truth, a Redis set is its cache, so a banned
user's update costs one set lookup before anything else (no database write, no reply).

A ban is written to the database first, then to the cache; a cache that lost it (Redis
restarted) is filled again the next time the user is seen (`remember`).
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.domain.users import set_banned

log = logging.getLogger(__name__)

BANNED_KEY = "kadr:banned"


async def is_banned(redis: Redis, user_id: int) -> bool:
    """The cached answer; False when Redis cannot say (the database is asked then)."""
    try:
        return bool(await redis.sismember(BANNED_KEY, str(user_id)))  # type: ignore[misc]
    except RedisError as exc:
        log.warning("ban cache unavailable (%s)", exc)
        return False


async def remember(redis: Redis, user_id: int) -> None:
    """A banned user the cache did not know: it knows now."""
    try:
        await redis.sadd(BANNED_KEY, str(user_id))  # type: ignore[misc]
    except RedisError as exc:
        log.warning("ban cache unavailable (%s)", exc)


async def ban(
    sessions: async_sessionmaker[AsyncSession], redis: Redis, user_id: int, banned: bool
) -> bool:
    """Ban or unban a user kadr has seen; False for one it never saw."""
    async with sessions.begin() as session:
        if not await set_banned(session, user_id, banned):
            return False
    if banned:
        await redis.sadd(BANNED_KEY, str(user_id))  # type: ignore[misc]
    else:
        await redis.srem(BANNED_KEY, str(user_id))  # type: ignore[misc]
    return True
