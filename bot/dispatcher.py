"""Builds the Dispatcher: routers per feature, the user and language middlewares, FSM state
in Redis."""

from __future__ import annotations

from aiogram import Dispatcher
from aiogram.fsm.storage.redis import RedisStorage

from bot.i18n import UserLocaleMiddleware
from bot.launch import Launcher
from bot.middlewares.users import UserMiddleware
from bot.routers import (
    admin,
    generate,
    history,
    language,
    payments,
    photos,
    preferences,
    results,
    start,
)
from core.domain.credits import Allowance
from core.jobs.start import UserQuota
from core.resources import Resources

# Order matters: a photo flow waiting for an instruction takes the text before the plain
# prompt handler does.
ROUTERS = (
    start.router,
    admin.router,
    payments.router,
    language.router,
    preferences.router,
    history.router,
    results.router,
    photos.router,
    generate.router,
)


def build_dispatcher(resources: Resources) -> Dispatcher:
    config = resources.config
    quota = UserQuota(
        resources.redis,
        per_minute=config.USER_JOBS_PER_MINUTE,
        max_live=config.USER_LIVE_JOBS,
    )
    allowance = Allowance(config.FREE_CREDITS_PER_DAY, config.admin_ids)
    dispatcher = Dispatcher(
        storage=RedisStorage(resources.redis),
        sessions=resources.sessions,
        redis=resources.redis,
        config=config,
        allowance=allowance,
        launcher=Launcher(resources.sessions, resources.redis, quota, allowance, resources.limiter),
    )
    dispatcher.update.middleware(UserMiddleware(resources.sessions, resources.redis))
    # After the user middleware: the language is the one stored on the user's row.
    dispatcher.update.middleware(UserLocaleMiddleware())
    dispatcher.include_routers(*ROUTERS)
    return dispatcher
