"""Prompts: a plain text message or `/image <prompt>` makes a picture, `/video <prompt>` a
video. The handler never calls fal: it records the job and enqueues it."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message, Update

from bot.filters import PlainText
from bot.i18n import _
from bot.job_messages import unseen
from bot.launch import Launcher
from core.domain.catalog import Mode
from core.domain.models import User
from core.jobs.start import JobRequest, Refusal, check_prompt

router = Router(name="generate")


@router.message(Command("image"))
async def image_command(
    message: Message,
    command: CommandObject,
    user: User,
    launcher: Launcher,
    event_update: Update,
) -> None:
    await _generate(message, command.args, "text_to_image", user, launcher, event_update)


@router.message(Command("video"))
async def video_command(
    message: Message,
    command: CommandObject,
    user: User,
    launcher: Launcher,
    event_update: Update,
) -> None:
    await _generate(message, command.args, "text_to_video", user, launcher, event_update)


@router.message(PlainText())
async def plain_prompt(
    message: Message, prompt: str, user: User, launcher: Launcher, event_update: Update
) -> None:
    await _generate(message, prompt, "text_to_image", user, launcher, event_update)


async def _generate(
    message: Message,
    prompt: str | None,
    mode: Mode,
    user: User,
    launcher: Launcher,
    update: Update,
) -> None:
    try:
        request = JobRequest(mode=mode, prompt=check_prompt(prompt))
    except Refusal as refusal:
        key = (
            "video_prompt_empty"
            if mode == "text_to_video" and refusal.key == "prompt_empty"
            else refusal.key
        )
        await message.answer(_(key, **refusal.values))
        return
    await launcher.launch(
        message.bot,  # type: ignore[arg-type]
        message.chat.id,
        user,
        request,
        ack_message_id=unseen(message),
        update_id=update.update_id,
    )
