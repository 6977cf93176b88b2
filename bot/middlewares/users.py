"""Keeps a row per Telegram user and hands handlers the user (and so, through
`bot.i18n.UserLocaleMiddleware` after it, their language).

Runs on every update that has a sender; banned users are dropped here, before any handler:
the ban cache first (one Redis lookup, nothing written), the user's row otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from aiogram.types import User as TelegramUser
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.domain.bans import is_banned, remember
from core.domain.users import touch_user
from core.infra.logs import log_fields


class UserMiddleware(BaseMiddleware):
    def __init__(self, sessions: async_sessionmaker[AsyncSession], redis: Redis) -> None:
        self._sessions = sessions
        self._redis = redis

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        sender: TelegramUser | None = data.get("event_from_user")
        if sender is None or sender.is_bot:
            return await handler(event, data)
        if await is_banned(self._redis, sender.id):
            return None
        async with self._sessions() as session:
            user = await touch_user(
                session,
                user_id=sender.id,
                username=sender.username,
                first_name=sender.first_name,
                language_code=sender.language_code,
            )
        if user.banned:
            await remember(self._redis, user.id)
            return None
        data["user"] = user
        with log_fields(user_id=sender.id):
            return await handler(event, data)
