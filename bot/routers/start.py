"""/start and /help: the first thing a user sees, in their language."""

from __future__ import annotations

from html import escape

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from bot.i18n import _

router = Router(name="start")


def welcome(message: Message) -> str:
    """The greeting, by the sender's name (also what an invitation link opens with)."""
    return _("start", name=escape(message.from_user.first_name if message.from_user else ""))


@router.message(CommandStart())
async def start(message: Message) -> None:
    await message.answer(welcome(message))


@router.message(Command("help"))
async def help_(message: Message) -> None:
    await message.answer(_("help"))
