"""/history: the user's last jobs, with links to their results and a regenerate button each;
a chain of edits is one entry, its latest step (v2, v3…)."""

from __future__ import annotations

import html

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import _
from bot.job_messages import Action, JobButton
from core.domain.models import Job, JobStatus, User
from core.jobs.output import media_files, output_of
from core.jobs.queries import latest_jobs_of

router = Router(name="history")

HISTORY_SIZE = 10
PROMPT_PREVIEW = 80
ICONS = {
    JobStatus.DELIVERED: "✅",
    JobStatus.FAILED: "⚠️",
    JobStatus.CANCELLED: "✖",
}


def _line(index: int, job: Job) -> str:
    prompt = (
        job.prompt if len(job.prompt) <= PROMPT_PREVIEW else job.prompt[: PROMPT_PREVIEW - 1] + "…"
    )
    mode = _(f"mode_{job.mode}")
    if job.step > 1:  # the latest step of a chain of edits stands for the whole chain
        mode += " · " + _("chain_step", step=job.step)
    line = _(
        "history_line",
        index=index,
        icon=ICONS.get(JobStatus(job.status), "⏳"),
        mode=mode,
        status=_(f"status_word_{job.status}"),
        when=f"{job.created_at:%d.%m %H:%M}",
        prompt=html.escape(prompt) or "—",
    )
    if job.status == JobStatus.DELIVERED and job.result:
        links = media_files(output_of(job, job.result), job.result)
        line += " " + " ".join(f'<a href="{html.escape(item["url"])}">🔗</a>' for item in links)
    return line


def _keyboard(jobs: list[Job]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for index, job in enumerate(jobs, start=1):
        builder.button(
            text=f"🔁 {index}", callback_data=JobButton(action=Action.REGENERATE, job_id=job.id)
        )
    builder.adjust(5)
    return builder.as_markup()


@router.message(Command("history"))
async def history(message: Message, user: User, sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        jobs = await latest_jobs_of(session, user.id, HISTORY_SIZE)
    if not jobs:
        await message.answer(_("history_empty"))
        return
    lines = [_line(index, job) for index, job in enumerate(jobs, start=1)]
    await message.answer(
        "\n\n".join([_("history_title"), *lines]),
        reply_markup=_keyboard(jobs),
        disable_web_page_preview=True,
    )
