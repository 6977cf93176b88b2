"""Text-to-image: a plain text message or `/image <prompt>` becomes a job.

The handler never calls fal: it records the job, answers with one status message that the
worker later edits, and enqueues the submit.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.texts import t
from core.generation import Refusal, UserQuota, check_prompt, create_generation, start_job

router = Router(name="generate")


@router.message(Command("image"))
async def image_command(
    message: Message,
    command: CommandObject,
    lang: str,
    sessions: async_sessionmaker[AsyncSession],
    redis: ArqRedis,
    quota: UserQuota,
) -> None:
    await _generate(message, command.args, lang, sessions, redis, quota)


@router.message(F.text, ~F.text.startswith("/"))
async def plain_prompt(
    message: Message,
    lang: str,
    sessions: async_sessionmaker[AsyncSession],
    redis: ArqRedis,
    quota: UserQuota,
) -> None:
    await _generate(message, message.text, lang, sessions, redis, quota)


async def _generate(
    message: Message,
    prompt: str | None,
    lang: str,
    sessions: async_sessionmaker[AsyncSession],
    redis: ArqRedis,
    quota: UserQuota,
) -> None:
    if message.from_user is None:
        return
    try:
        job = await create_generation(
            sessions,
            quota,
            user_id=message.from_user.id,
            chat_id=message.chat.id,
            language=lang,
            mode="text_to_image",
            prompt=check_prompt(prompt),
        )
    except Refusal as refusal:
        await message.answer(t(lang, refusal.key, **refusal.values))
        return
    try:
        status_message_id: int | None = (await message.answer(t(lang, "status_queued"))).message_id
    except TelegramAPIError:
        status_message_id = None  # the job goes on; only its progress display is lost
    await start_job(sessions, redis, job, status_message_id)
