"""The buttons on a job: ✖ Cancel and ✨ Improve on its status message; 🔁 Regenerate,
✏️ Edit this, 🎬 Animate, ⬇️ Original, ↩️ My words and 🎨 Style under its result.

Each button names only its job; the job row holds the rest, so buttons work after restarts
and refuse politely once the job's files are too old (fal keeps outputs about a week).
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import cast

from aiogram import Bot, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import _
from bot.job_messages import Action, JobButton, remove_status, show_cancelled
from bot.launch import Launcher
from bot.launch_from import launch_from_button
from bot.routers.photos import PhotoFlow
from bot.routers.styles import ask_style
from core.domain.catalog import Mode, catalog
from core.domain.models import Job, JobStatus, User, utcnow
from core.jobs import lifecycle
from core.jobs.cancel import Cancelled, cancel_job
from core.jobs.output import media_files, output_of
from core.jobs.queries import get_job
from core.jobs.start import JobRequest, options_again, prompt_again

router = Router(name="results")

RESULT_TTL = timedelta(days=6)
MAX_SEED = 2**31 - 1


@router.callback_query(JobButton.filter())
async def on_job_button(
    query: CallbackQuery,
    callback_data: JobButton,
    user: User,
    sessions: async_sessionmaker[AsyncSession],
    launcher: Launcher,
    state: FSMContext,
    event_update: Update,
) -> None:
    async with sessions() as session:
        job = await get_job(session, callback_data.job_id)
    if job is None or job.user_id != user.id:
        await query.answer(_("job_not_yours"), show_alert=True)
        return
    if callback_data.action == Action.CANCEL:
        await _cancel(query, job, launcher)
        return
    if utcnow() - job.created_at > RESULT_TTL:
        await query.answer(_("job_too_old"), show_alert=True)
        return
    if callback_data.action == Action.REGENERATE:
        await query.answer()
        await launch_from_button(launcher, query, job, user, again(job), event_update.update_id)
        return
    if callback_data.action in (Action.IMPROVE, Action.MY_WORDS):
        improve = callback_data.action == Action.IMPROVE
        await query.answer(_("improve_started") if improve else None)
        if improve and await _withdraw_unsent(launcher, job):
            await remove_status(query.bot, job)  # type: ignore[arg-type]
        request = _same(job, {"improve": improve})
        await launch_from_button(launcher, query, job, user, request, event_update.update_id)
        return
    if callback_data.action == Action.STYLE:
        await query.answer()
        await ask_style(query.bot, job, user.language)  # type: ignore[arg-type]
        return
    urls = _result_urls(job)
    if not urls:
        await query.answer(_("job_not_done"), show_alert=True)
        return
    await query.answer()
    if callback_data.action == Action.EDIT:
        await state.set_state(PhotoFlow.instruction)
        await state.set_data({"image_url": urls[0]})
        await query.bot.send_message(job.chat_id, _("photo_ask_instruction"))  # type: ignore[union-attr]
    elif callback_data.action == Action.ANIMATE:
        prompt = job.prompt or _("animate_default_prompt")
        request = JobRequest(mode="image_to_video", prompt=prompt, options={"image_url": urls[0]})
        await launch_from_button(launcher, query, job, user, request, event_update.update_id)
    else:
        await _send_originals(query.bot, job.chat_id, urls)  # type: ignore[arg-type]


def again(job: Job) -> JobRequest:
    """Same mode, model, prompt and options, and the same prompt to the model (the helper's
    rewrite is not asked for again); a new seed so the result differs."""
    return _same(job, {**prompt_again(job), "seed": random.randint(0, MAX_SEED)})


def _same(job: Job, changes: dict[str, object]) -> JobRequest:
    """The job again from the user's words: same mode, model and options but `changes` (the
    helper's rewrite is not kept unless `changes` keep it: ✨ and ↩️ decide it anew)."""
    return JobRequest(
        mode=cast(Mode, job.mode),
        prompt=job.prompt,
        options={**options_again(job), **changes},
        model=catalog().find(job.model),
    )


async def _withdraw_unsent(launcher: Launcher, job: Job) -> bool:
    """✨ Improve on a job still waiting in kadr's queue replaces it: fal never got it, so it
    is cancelled and refunded, and its improved copy goes instead. One fal already has goes
    on (a cancel there may still be billed)."""
    return job.status == JobStatus.QUEUED and await lifecycle.cancel(
        launcher.sessions, job, unsent=True
    )


def _result_urls(job: Job) -> list[str]:
    if job.status != JobStatus.DELIVERED or not job.result:
        return []
    return [item["url"] for item in media_files(output_of(job, job.result), job.result)]


async def _cancel(query: CallbackQuery, job: Job, launcher: Launcher) -> None:
    outcome = await cancel_job(launcher.sessions, launcher.redis, job)
    if outcome is Cancelled.TOO_LATE:
        await query.answer(_("cancel_too_late"))
        return
    requested = outcome is Cancelled.REQUESTED
    await query.answer(_("cancel_requested_toast" if requested else "cancelled_toast"))
    await show_cancelled(query.bot, job, requested=requested)  # type: ignore[arg-type]


async def _send_originals(bot: Bot, chat_id: int, urls: list[str]) -> None:
    """The files themselves, as documents: no recompression, full resolution."""
    for url in urls:
        try:
            await bot.send_document(chat_id, url)
        except TelegramBadRequest:
            await bot.send_message(chat_id, url)
