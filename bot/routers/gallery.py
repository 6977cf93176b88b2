"""/gallery: a button that opens the Mini App gallery (served by `kadr api` under /app/).
Telegram lets a Web App button open only from a private chat; elsewhere the user is told
where to ask. The chat's menu button opens the same page (set by `kadr set-webhook`)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message, WebAppInfo
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.filters import PRIVATE
from bot.i18n import _
from core.infra.config import Config

router = Router(name="gallery")


@router.message(Command("gallery"))
async def gallery(message: Message, config: Config) -> None:
    if message.chat.type != PRIVATE:
        await message.answer(_("gallery_private_only"))
        return
    builder = InlineKeyboardBuilder()
    builder.button(text=_("gallery_open"), web_app=WebAppInfo(url=config.mini_app_url))
    await message.answer(_("gallery"), reply_markup=builder.as_markup())
