"""Starting a job from any handler: record it, post its status message, enqueue it.

Every way to start a job (a prompt, a photo, a button under a result) ends here, so the
status message, its Cancel button and the refusal texts are the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.keyboards import status_keyboard
from bot.texts import t
from core.generation import JobRequest, Refusal, UserQuota, create_generation, start_job
from core.models import Job, User
from core.progress import status_text


@dataclass(frozen=True)
class Launcher:
    sessions: async_sessionmaker[AsyncSession]
    redis: ArqRedis
    quota: UserQuota

    async def launch(self, bot: Bot, chat_id: int, user: User, request: JobRequest) -> Job | None:
        """The job, or None when it was refused (the user has been told why)."""
        lang = user.language
        try:
            job = await create_generation(
                self.sessions, self.quota, user, chat_id=chat_id, request=request
            )
        except Refusal as refusal:
            await bot.send_message(chat_id, t(lang, refusal.key, **refusal.values))
            return None
        try:
            status = await bot.send_message(
                chat_id,
                status_text(job, "status_queued"),
                reply_markup=status_keyboard(job.id, lang),
            )
            status_message_id: int | None = status.message_id
        except TelegramAPIError:
            status_message_id = None  # the job goes on; only its progress display is lost
        await start_job(self.sessions, self.redis, job, status_message_id)
        return job
