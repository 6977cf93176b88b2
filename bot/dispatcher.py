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
    albums,
    gallery,
    generate,
    history,
    inline,
    language,
    payments,
    photos,
    preferences,
    referrals,
    replies,
    results,
    start,
    styles,
    subscriptions,
)
from core.resources import Resources

# Order matters: a photo flow waiting for an instruction takes the text before the plain
# prompt handler does; a reply to a picture, before both (and ↩️ Undo before the other buttons
# of a result).
ROUTERS = (
    inline.router,  # /start with a prompt from inline mode, before the plain /start
    referrals.router,  # /start with an invitation, before the plain /start
    start.router,
    admin.router,
    subscriptions.router,  # a plan's payments, before the packs'
    payments.router,
    language.router,
    preferences.router,
    history.router,
    gallery.router,
    replies.router,
    styles.router,
    results.router,
    albums.router,
    photos.router,
    generate.router,
)


def build_dispatcher(resources: Resources) -> Dispatcher:
    launcher = Launcher.of(resources)
    dispatcher = Dispatcher(
        storage=RedisStorage(resources.redis),
        sessions=resources.sessions,
        redis=resources.redis,
        config=resources.config,
        allowance=launcher.allowance,
        launcher=launcher,
    )
    dispatcher.update.middleware(UserMiddleware(resources.sessions, resources.redis))
    # After the user middleware: the language is the one stored on the user's row.
    dispatcher.update.middleware(UserLocaleMiddleware())
    dispatcher.include_routers(*ROUTERS)
    return dispatcher
