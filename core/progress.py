"""The one status message per job, edited as the job moves on.

Progress edits are a courtesy: they take a Telegram send slot only when one is free now, and
a failed edit never fails the job.
"""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

from bot.texts import t
from core.models import Job
from core.telegram_limits import TelegramLimiter

log = logging.getLogger(__name__)


async def show_progress(bot: Bot, limiter: TelegramLimiter, job: Job, key: str) -> None:
    if job.status_message_id is None or not await limiter.try_acquire(job.chat_id):
        return
    try:
        await bot.edit_message_text(
            t(job.language, key), chat_id=job.chat_id, message_id=job.status_message_id
        )
    except TelegramAPIError as exc:
        log.info("status message of job %s not edited: %s", job.id, exc)


async def remove_status(bot: Bot, job: Job) -> None:
    if job.status_message_id is None:
        return
    try:
        await bot.delete_message(job.chat_id, job.status_message_id)
    except TelegramAPIError as exc:
        log.info("status message of job %s not deleted: %s", job.id, exc)
