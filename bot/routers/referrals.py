"""Invitations: /invite (the user's link and what it brought), and /start by someone's
link, which records the inviter for a user new to the bot. The rules are in
`core/domain/referrals.py`; the credits come with the newcomer's first delivered job."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import _
from bot.routers.start import welcome
from core.domain import referrals
from core.domain.catalog import catalog
from core.domain.models import User

router = Router(name="referrals")


@router.message(CommandStart(deep_link=True, magic=F.args.startswith(referrals.PREFIX)))
async def start_invited(
    message: Message,
    command: CommandObject,
    user: User,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """/start r_<code>: the greeting, and the invitation's promise when it counts."""
    text = welcome(message)
    if await referrals.record(sessions, user=user, start_parameter=command.args or ""):
        text += "\n\n" + _("invited", credits=catalog().referrals.newcomer_credits)
    await message.answer(text)


@router.message(Command("invite"))
async def invite(
    message: Message, bot: Bot, user: User, sessions: async_sessionmaker[AsyncSession]
) -> None:
    me = await bot.me()
    link = f"https://t.me/{me.username}?start={referrals.code_of(user.id)}"
    terms = catalog().referrals
    seen = await referrals.invitations_of(sessions, user.id)
    await message.answer(
        _(
            "invite",
            link=link,
            inviter=terms.inviter_credits,
            newcomer=terms.newcomer_credits,
            cap=terms.daily_cap,
            joined=seen.joined,
            earned=seen.earned,
        )
    )
