"""/start and /help: the first thing a user sees, in their language."""

from __future__ import annotations

from html import escape

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from bot.i18n import _

router = Router(name="start")


@router.message(CommandStart())
async def start(message: Message) -> None:
    name = escape(message.from_user.first_name if message.from_user else "")
    await message.answer(_("start", name=name))


@router.message(Command("help"))
async def help_(message: Message) -> None:
    await message.answer(_("help"))
