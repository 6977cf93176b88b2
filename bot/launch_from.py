"""`Launcher.launch` (bot/launch.py) called from a handler: what it needs besides the request
(the bot, the chat, the update that names the job, the message to react to) read from the
message or the button that asked, the same way in every router."""

from __future__ import annotations

from aiogram.types import CallbackQuery, Message

from bot.job_messages import unseen
from bot.launch import Launcher
from core.domain.models import Job, User
from core.jobs.start import JobRequest


async def launch_from_message(
    launcher: Launcher, message: Message, user: User, request: JobRequest, update_id: int
) -> Job | None:
    """A job the user's message asked for: its answers go to the message's chat, and the
    message is what gets the reaction when no status message goes, unless the webhook gave
    it one already (`unseen`)."""
    return await launcher.launch(
        message.bot,  # type: ignore[arg-type]
        message.chat.id,
        user,
        request,
        update_id=update_id,
        ack_message_id=unseen(message),
    )


async def launch_from_button(
    launcher: Launcher,
    query: CallbackQuery,
    job: Job,
    user: User,
    request: JobRequest,
    update_id: int,
) -> Job | None:
    """A job a button of `job`'s asked for (under its result or status message, or a style
    offered for it): it goes to `job`'s chat, and the button's answer is its acknowledgement."""
    return await launcher.launch(
        query.bot,  # type: ignore[arg-type]
        job.chat_id,
        user,
        request,
        update_id=update_id,
    )
