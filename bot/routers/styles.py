"""/styles and 🎨 under a result: one-tap styles from the catalog's `[[styles]]`.

/styles picks a style for the next prompts (kept in the user's preferences, until "No style")
and offers to make the last prompt again in it; 🎨 under a result makes that prompt (or
photo edit) again in a style. Each is a new job, charged as any. Operators add a style by
editing the catalog: nothing here names one.
"""

from __future__ import annotations

import contextlib
from typing import cast

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, Update
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import _
from bot.launch import Launcher
from bot.launch_from import launch_from_button
from core.domain.catalog import STYLE_MODES, Mode, catalog
from core.domain.models import Job, User
from core.domain.preferences import change_preferences, preferences_of
from core.jobs.queries import get_job, latest_jobs_of
from core.jobs.start import JobRequest, options_again

router = Router(name="styles")

#: How far back "the last prompt" is looked for among the user's jobs.
LAST_JOBS = 20


class StyleButton(CallbackData, prefix="st"):
    """`what`: pick (the style for the next prompts; "" for none), last (the last prompt
    again in it), job (that job again in it)."""

    what: str
    style: str = ""
    job_id: str = ""


def styles_keyboard(
    language: str, *, what: str, chosen: str | None = None, job_id: str = ""
) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for style in catalog().styles:
        mark = "• " if style.id == chosen else ""
        builder.button(
            text=f"{mark}{style.title_in(language)}",
            callback_data=StyleButton(what=what, style=style.id, job_id=job_id),
        )
    if what == "pick":
        mark = "• " if chosen is None else ""
        builder.button(text=f"{mark}{_('style_none')}", callback_data=StyleButton(what="pick"))
    builder.adjust(2)
    return builder.as_markup()


def restyled(job: Job, style_id: str) -> JobRequest:
    """The job again, its words (and photo) in the style."""
    return JobRequest(
        mode=cast(Mode, job.mode),
        prompt=job.prompt,
        options={**options_again(job), "style": style_id},
        model=catalog().find(job.model),
    )


async def ask_style(bot: Bot, job: Job, language: str) -> None:
    """🎨 under a result: which style to make it again in."""
    await bot.send_message(
        job.chat_id,
        _("style_for_job"),
        reply_markup=styles_keyboard(language, what="job", job_id=job.id),
    )


@router.message(Command("styles"))
async def show_styles(message: Message, user: User) -> None:
    if not catalog().styles:
        await message.answer(_("styles_none_offered"))
        return
    chosen = preferences_of(user).style
    await message.answer(
        _("styles_prompt"), reply_markup=styles_keyboard(user.language, what="pick", chosen=chosen)
    )


@router.callback_query(StyleButton.filter(F.what == "pick"))
async def pick_style(
    query: CallbackQuery,
    callback_data: StyleButton,
    user: User,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    style = catalog().style(callback_data.style)
    async with sessions() as session:
        await change_preferences(
            session, user.id, lambda chosen: setattr(chosen, "style", style and style.id)
        )
        last = await _last_prompt(session, user.id)
    await query.answer()
    builder = InlineKeyboardBuilder()
    if style is not None and last is not None:
        builder.button(
            text=_("style_apply_last"), callback_data=StyleButton(what="last", style=style.id)
        )
    text = _("style_chosen", style=style.title_in(user.language)) if style else _("style_off")
    with contextlib.suppress(TelegramBadRequest):  # the same choice again
        await query.message.edit_text(text, reply_markup=builder.as_markup())  # type: ignore[union-attr]


@router.callback_query(StyleButton.filter(F.what.in_({"last", "job"})))
async def apply_style(
    query: CallbackQuery,
    callback_data: StyleButton,
    user: User,
    sessions: async_sessionmaker[AsyncSession],
    launcher: Launcher,
    event_update: Update,
) -> None:
    style = catalog().style(callback_data.style)
    if style is None:
        await query.answer(_("style_gone"), show_alert=True)
        return
    async with sessions() as session:
        if callback_data.what == "job":
            job = await get_job(session, callback_data.job_id)
        else:
            job = await _last_prompt(session, user.id)
    if job is None or job.user_id != user.id:
        await query.answer(_("job_not_yours"), show_alert=True)
        return
    await query.answer()
    await launch_from_button(
        launcher, query, job, user, restyled(job, style.id), event_update.update_id
    )


async def _last_prompt(session: AsyncSession, user_id: int) -> Job | None:
    """The user's latest job a style applies to: a picture from words, or a photo edit."""
    jobs = await latest_jobs_of(session, user_id, LAST_JOBS)
    return next((job for job in jobs if job.mode in STYLE_MODES and job.prompt), None)
