"""Registering the bot with Telegram: webhook, allowed update types, command menu, and the
menu button that opens the Mini App gallery."""

from __future__ import annotations

from aiogram import Bot, Dispatcher
from aiogram.types import BotCommand, MenuButtonWebApp, WebAppInfo

from bot.dispatcher import ROUTERS
from core.infra.config import Config
from core.resources import create_bot

#: The default menu button's label (one for every chat: Telegram keeps no per-language one).
GALLERY_BUTTON = "🖼 Gallery"

COMMANDS = {
    "en": [
        ("start", "Start"),
        ("image", "Draw a picture"),
        ("video", "Make a video"),
        ("settings", "Models, aspect ratio, images"),
        ("styles", "Picture styles"),
        ("history", "My last jobs"),
        ("gallery", "All my results"),
        ("balance", "My credits"),
        ("buy", "Buy credits with Stars"),
        ("subscription", "Monthly credits with Stars"),
        ("invite", "Invite friends, earn credits"),
        ("paysupport", "Help with a payment"),
        ("language", "Change language"),
        ("help", "What I can do"),
    ],
    "ru": [
        ("start", "Начать"),
        ("image", "Нарисовать картинку"),
        ("video", "Сделать видео"),
        ("settings", "Модели, формат, число картинок"),
        ("styles", "Стили картинок"),
        ("history", "Мои последние задачи"),
        ("gallery", "Все мои результаты"),
        ("balance", "Мои кредиты"),
        ("buy", "Купить кредиты за звёзды"),
        ("subscription", "Кредиты каждый месяц за звёзды"),
        ("invite", "Пригласить друзей, получить кредиты"),
        ("paysupport", "Помощь с оплатой"),
        ("language", "Сменить язык"),
        ("help", "Что я умею"),
    ],
}


def used_update_types() -> list[str]:
    """Only the update kinds some handler listens to, so Telegram sends nothing we drop."""
    dispatcher = Dispatcher()
    dispatcher.include_routers(*ROUTERS)
    return sorted(dispatcher.resolve_used_update_types())


async def _set_commands(bot: Bot) -> None:
    for language, commands in COMMANDS.items():
        menu = [BotCommand(command=name, description=text) for name, text in commands]
        await bot.set_my_commands(menu, language_code=None if language == "en" else language)


async def set_webhook(
    config: Config, max_connections: int | None, *, drop_pending_updates: bool
) -> str:
    async with create_bot(config) as bot:
        await bot.set_webhook(
            config.telegram_webhook_url,
            secret_token=config.TELEGRAM_WEBHOOK_SECRET,
            max_connections=max_connections or config.TELEGRAM_MAX_CONNECTIONS,
            allowed_updates=used_update_types(),
            drop_pending_updates=drop_pending_updates,
        )
        await _set_commands(bot)
        await bot.set_chat_menu_button(
            menu_button=MenuButtonWebApp(
                text=GALLERY_BUTTON, web_app=WebAppInfo(url=config.mini_app_url)
            )
        )
        return await _describe(bot)


async def delete_webhook(config: Config, *, drop_pending_updates: bool) -> None:
    async with create_bot(config) as bot:
        await bot.delete_webhook(drop_pending_updates=drop_pending_updates)


async def webhook_info(config: Config) -> str:
    async with create_bot(config) as bot:
        return await _describe(bot)


async def _describe(bot: Bot) -> str:
    info = await bot.get_webhook_info()
    lines = [
        f"url:                  {info.url or '(none)'}",
        f"pending updates:      {info.pending_update_count}",
        f"max connections:      {info.max_connections or '-'}",
        f"allowed updates:      {', '.join(info.allowed_updates or []) or '(all but a few)'}",
        f"ip address:           {info.ip_address or '-'}",
    ]
    if info.last_error_date:
        lines.append(
            f"last error:           {info.last_error_date:%Y-%m-%d %H:%M:%S} "
            f"{info.last_error_message}"
        )
    if info.last_synchronization_error_date:
        lines.append(f"last sync error:      {info.last_synchronization_error_date}")
    return "\n".join(lines)
