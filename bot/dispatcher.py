"""Builds the Dispatcher: routers per feature, the user middleware, FSM state in Redis."""

from __future__ import annotations

from aiogram import Dispatcher
from aiogram.fsm.storage.redis import RedisStorage

from bot.middlewares.users import UserMiddleware
from bot.routers import generate, language, start
from core.generation import UserQuota
from core.resources import Resources

ROUTERS = (start.router, language.router, generate.router)


def build_dispatcher(resources: Resources) -> Dispatcher:
    dispatcher = Dispatcher(
        storage=RedisStorage(resources.redis),
        sessions=resources.sessions,
        settings=resources.settings,
        redis=resources.redis,
        quota=UserQuota(resources.redis),
    )
    dispatcher.update.middleware(UserMiddleware(resources.sessions))
    dispatcher.include_routers(*ROUTERS)
    return dispatcher
