"""The one status message per job, edited as the job moves on, with its Cancel button.

Progress edits are a courtesy: they go only when a Telegram send moment is free now, and a
failed edit never fails the job.
"""

from __future__ import annotations

import html
import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

from bot.keyboards import status_keyboard
from bot.texts import t
from core.catalog import catalog
from core.models import Job
from core.telegram_pacing import SendSkipped, optional

log = logging.getLogger(__name__)


def status_text(job: Job, key: str, **values: object) -> str:
    """The status line plus what the job runs with (model, aspect ratio): the user's settings."""
    model = catalog().find(job.model)
    return t(
        job.language,
        "status_details",
        text=t(job.language, key, **values),
        model=html.escape(model.title if model else job.model),
        aspect_ratio=job.options.get("aspect_ratio", "1:1"),
    )


async def show_progress(bot: Bot, job: Job, key: str, **values: object) -> None:
    if job.status_message_id is None:
        return
    try:
        with optional():
            await bot.edit_message_text(
                status_text(job, key, **values),
                chat_id=job.chat_id,
                message_id=job.status_message_id,
                reply_markup=status_keyboard(job.id, job.language),
            )
    except SendSkipped:
        return
    except TelegramAPIError as exc:
        log.info("status message of job %s not edited: %s", job.id, exc)


async def remove_status(bot: Bot, job: Job) -> None:
    if job.status_message_id is None:
        return
    try:
        await bot.delete_message(job.chat_id, job.status_message_id)
    except TelegramAPIError as exc:
        log.info("status message of job %s not deleted: %s", job.id, exc)
