"""/language: a choice of two buttons; the choice is stored on the user row."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import LANGUAGE_NAMES, _, use_locale
from core.domain.users import LANGUAGES, set_language

router = Router(name="language")


class LanguageChoice(CallbackData, prefix="lang"):
    code: str


def language_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for code in LANGUAGES:
        builder.button(text=LANGUAGE_NAMES[code], callback_data=LanguageChoice(code=code))
    return builder.as_markup()


@router.message(Command("language"))
async def ask_language(message: Message) -> None:
    await message.answer(_("language_prompt"), reply_markup=language_keyboard())


@router.callback_query(LanguageChoice.filter(F.code.in_(LANGUAGES)))
async def choose_language(
    query: CallbackQuery,
    callback_data: LanguageChoice,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        await set_language(session, query.from_user.id, callback_data.code)
    with use_locale(callback_data.code):  # the new choice, not the stored one
        text = _("language_set")
    await query.answer(text)
    if query.message is not None:
        await query.bot.edit_message_text(  # type: ignore[union-attr]
            text, chat_id=query.message.chat.id, message_id=query.message.message_id
        )
