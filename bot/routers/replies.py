"""Replies: a text reply to a picture changes it, and ↩️ Undo under a changed result shows the
version before.

A reply to the user's own photo, to a result of the bot, or, in a group (where the bot must
be addressed: a mention of it, or a reply to one of its messages), to another member's photo
edits that picture with the reply's text. A reply to a result continues its chain: the new
job records the job it edits, and its caption shows its step (v2, v3…). A result is found by
its message (`result_messages`); its picture goes to fal from fal's own URL while fal keeps
it (Telegram's copy is recompressed, and a chain would lose a little at every step), else
from Telegram. A reply to a video, a sticker or a non-image file gets a clear answer; a
reply to a text is left to the other routers (in a group it is how the bot is addressed).

Undo resends the earlier version by its Telegram file id: no job, no charge. It is claimed in
the database before it is sent, once per step, so a second tap gets a toast instead of a
second picture; the same tap handled again (its update redelivered after a crash) passes the
claim and its send is replayed by the outbox, not sent again.
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Filter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, Update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.filters import addressed
from bot.i18n import _
from bot.job_messages import Action, JobButton, show_again, unseen
from bot.launch import Launcher
from bot.routers.photos import _check, _refusal_text, photo_of
from bot.routers.results import RESULT_TTL, _result_urls
from core.domain.models import Job, User, utcnow
from core.fal.photos import PhotoRejected
from core.jobs import lifecycle
from core.jobs.output import output_of
from core.jobs.queries import get_job, job_of_message
from core.jobs.start import JobRequest, Refusal, check_prompt

log = logging.getLogger(__name__)

router = Router(name="replies")

#: What a message can show besides text: a reply to any of these is about that thing.
MEDIA = ("photo", "document", "video", "animation", "sticker", "video_note", "voice", "audio")


class NotAPicture(Exception):
    """The replied message shows something that cannot be edited as a picture."""


class ReplyToMedia(Filter):
    """A text (not a command) replying to a message with media, meant for the bot; hands the
    handler `prompt` (the mention taken out) and `replied`."""

    async def __call__(self, message: Message, bot: Bot) -> bool | dict[str, Any]:
        replied = message.reply_to_message
        text = message.text or ""
        if replied is None or not text or text.startswith("/"):
            return False
        if not any(getattr(replied, kind) is not None for kind in MEDIA):
            return False
        prompt = await addressed(message, bot, text)
        return False if prompt is None else {"prompt": prompt, "replied": replied}


@router.message(ReplyToMedia())
async def on_reply(
    message: Message,
    prompt: str,
    replied: Message,
    user: User,
    launcher: Launcher,
    state: FSMContext,
    event_update: Update,
) -> None:
    await state.clear()  # a reply names its picture: an Edit asked for before is dropped
    try:
        parent, picture = await _picture(launcher, message.chat.id, replied)
        request = JobRequest(
            mode="edit", prompt=check_prompt(prompt), options=picture, parent=parent
        )
    except NotAPicture:
        await message.reply(_("reply_not_a_picture"))
        return
    except PhotoRejected as rejected:
        await message.reply(_refusal_text(rejected, "edit"))
        return
    except Refusal as refusal:
        await message.reply(_(refusal.key, **refusal.values))
        return
    await launcher.launch(
        message.bot,  # type: ignore[arg-type]
        message.chat.id,
        user,
        request,
        update_id=event_update.update_id,
        ack_message_id=unseen(message),
    )


async def _picture(
    launcher: Launcher, chat_id: int, replied: Message
) -> tuple[Job | None, dict[str, Any]]:
    """The job whose result the replied message shows (None for a person's photo), and the
    edit's input: fal's URL of that result, or the Telegram file (checked on its metadata)."""
    async with launcher.sessions() as session:
        shown = await job_of_message(session, chat_id, replied.message_id)
    parent = shown[0] if shown is not None else None
    if shown is not None:
        job, position = shown
        if output_of(job, job.result or {}) == "video":
            raise NotAPicture
        urls = _result_urls(job) if utcnow() - job.created_at <= RESULT_TTL else []
        if position < len(urls):
            return job, {"image_url": urls[position]}
    if replied.photo is None and replied.document is None:
        raise NotAPicture
    photo = photo_of(replied)
    _check(photo, "edit")
    return parent, {"image_file_id": photo["image_file_id"]}


@router.callback_query(JobButton.filter(F.action == Action.UNDO))
async def on_undo(
    query: CallbackQuery,
    callback_data: JobButton,
    event_update: Update,
    user: User,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        job = await get_job(session, callback_data.job_id)
        parent = await get_job(session, job.parent_id) if job and job.parent_id else None
    if job is None or job.user_id != user.id:
        await query.answer(_("job_not_yours"), show_alert=True)
        return
    if parent is None or not (parent.result or {}).get("telegram_file_ids"):
        await query.answer(_("undo_gone"), show_alert=True)
        return
    if not await lifecycle.claim_undo(sessions, job, event_update.update_id):
        await query.answer(_("undo_done"))
        return
    await query.answer()
    bot: Bot = query.bot  # type: ignore[assignment]
    try:
        message_ids = await show_again(bot, parent, job.chat_id)
    except TelegramBadRequest as exc:
        log.info("job %s: its earlier version was not shown again: %s", job.id, exc)
        await lifecycle.release_undo(sessions, job)
        await bot.send_message(job.chat_id, _("undo_gone"))
        return
    await lifecycle.shown_again(sessions, parent, job.chat_id, message_ids)
