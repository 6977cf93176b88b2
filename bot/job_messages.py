"""A job's Telegram face: its status message (posted, edited as the job moves on, marked
cancelled, removed) with its Cancel button, the caption and buttons under its result, and
the text that tells why it failed. The bot's handlers and the workers both call this module,
so a job looks the same whichever process shows it.

Buttons carry only a job id and an action: everything else is in the database, so buttons
keep working after a restart and on any process.

Progress edits are a courtesy: they go only when a Telegram send moment is free now and no
result waits to be sent, at most once every `refresh_every` seconds per job (Telegram's pace
for one chat, and what a user can read), and a failed edit never fails the job. At a peak a
prompt gets a reaction instead of a status message: the reaction is not a message, so it costs
none of the bot's 30 messages a second that the results need. In a private chat the webhook
gave it already (core/telegram/seen.py); in a group the handler does (`acknowledge`).

Texts are in the job's language (`use_locale(job.language)` here, once per function): the
workers that call this have no user's update to take a language from.
"""

from __future__ import annotations

import contextlib
import html
import logging
from enum import StrEnum

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    InputMediaVideo,
    Message,
    ReactionTypeEmoji,
)
from aiogram.utils.keyboard import InlineKeyboardBuilder
from redis.asyncio import Redis

from bot.i18n import _, error_text, use_locale
from core.domain.catalog import MAX_INPUT_SIDE, PROMPT_MODES, STYLE_MODES, Output, catalog
from core.domain.models import Job
from core.jobs.estimate import Figures, eta, rounded
from core.jobs.output import output_of
from core.telegram.file_ids import FileKind
from core.telegram.outbox import Outbox, SendSkipped
from core.telegram.seen import PRIVATE, SEEN_EMOJI

log = logging.getLogger(__name__)

CAPTION_LIMIT = 1024
#: Seconds between two edits of one status message at most: in a private chat, and in a
#: group (20 messages a minute for the whole group, shared by everyone's jobs there).
REFRESH_PRIVATE = 5.0
REFRESH_GROUP = 15.0
#: The last text shown on a job's status message (an edit that changes nothing is skipped:
#: Telegram refuses it), and the mark that an edit went less than `refresh_every` ago.
SHOWN_PREFIX = "kadr:status-text:"
EDITED_PREFIX = "kadr:status-edited:"
SHOWN_TTL = 3600
#: Telegram's answer to a file id of one kind sent as another ("can't use file of type
#: Document as Photo").
NOT_THIS_KIND = "can't use file of type"
#: An album's item for a file id of each kind.
ALBUM_ITEMS: dict[FileKind, type[InputMediaPhoto | InputMediaVideo | InputMediaDocument]] = {
    "photo": InputMediaPhoto,
    "video": InputMediaVideo,
    "document": InputMediaDocument,
}


class Action(StrEnum):
    CANCEL = "x"
    REGENERATE = "r"
    EDIT = "e"
    ANIMATE = "a"
    ORIGINAL = "o"
    IMPROVE = "i"
    MY_WORDS = "w"
    STYLE = "s"
    UNDO = "u"


class JobButton(CallbackData, prefix="j"):
    action: Action
    job_id: str


LABELS = {
    Action.CANCEL: "button_cancel",
    Action.REGENERATE: "button_regenerate",
    Action.EDIT: "button_edit",
    Action.ANIMATE: "button_animate",
    Action.ORIGINAL: "button_original",
    Action.IMPROVE: "button_improve",
    Action.MY_WORDS: "button_my_words",
    Action.STYLE: "button_style",
    Action.UNDO: "button_undo",
}


def _keyboard(job: Job, actions: list[Action]) -> InlineKeyboardBuilder:
    builder = InlineKeyboardBuilder()
    with use_locale(job.language):
        for action in actions:
            builder.button(
                text=_(LABELS[action]), callback_data=JobButton(action=action, job_id=job.id)
            )
    return builder


def improvable(job: Job) -> bool:
    """Whether ✨ Improve can help this job: a prompt the helper would rewrite, not yet it
    (nor made again from its rewrite)."""
    return (
        job.mode in PROMPT_MODES
        and not job.options.get("improve")
        and "improved_prompt" not in job.options
        and catalog().prompt_helper.helps(job.prompt)
    )


def status_keyboard(job: Job) -> InlineKeyboardMarkup:
    """✖ Cancel, and ✨ Improve (the same again from a detailed prompt) where it helps."""
    actions = [Action.CANCEL, *([Action.IMPROVE] if improvable(job) else [])]
    return _keyboard(job, actions).as_markup()


def result_keyboard(job: Job, output: Output) -> InlineKeyboardMarkup:
    """Regenerate and Original for every result; Edit and Animate only make sense for pictures,
    🎨 Style for pictures made from words; ↩️ My words where the prompt helper rewrote them;
    ↩️ Undo for a step of a chain of edits after its first (it shows the step before)."""
    actions = [Action.REGENERATE]
    if output != "video":
        actions += [Action.EDIT, Action.ANIMATE]
    actions.append(Action.ORIGINAL)
    if job.parent_id is not None and output != "video":
        actions.append(Action.UNDO)
    if job.options.get("improved_prompt"):
        actions.append(Action.MY_WORDS)
    if job.mode in STYLE_MODES and job.prompt and catalog().styles:
        actions.append(Action.STYLE)
    builder = _keyboard(job, actions)
    builder.adjust(2)
    return builder.as_markup()


def status_text(job: Job, key: str, **values: object) -> str:
    """The status line plus what the job runs with (model, aspect ratio): the user's preferences."""
    with use_locale(job.language):
        return _details(job, _(key, **values))


def _details(job: Job, text: str) -> str:
    model = catalog().find(job.model)
    return _(
        "status_details",
        text=text,
        model=html.escape(model.title if model else job.model),
        aspect_ratio=job.options.get("aspect_ratio", "1:1"),
    )


def refresh_every(chat_id: int) -> float:
    return REFRESH_PRIVATE if chat_id > 0 else REFRESH_GROUP


def progress_text(job: Job, figures: Figures) -> str:
    """The status line with the jobs ahead (in our queue, at fal, results being sent) and
    when the result should come, as far as the figures tell."""
    key = "status_generating" if job.submitted_at is not None and not figures.ahead else None
    with use_locale(job.language):
        lines = [_(key or "status_queued")]
        if figures.ahead:
            lines.append(
                _(
                    "status_ahead",
                    ahead=figures.ahead,
                    queue=figures.in_queue,
                    fal=figures.at_fal,
                    sending=figures.results,
                )
            )
        seconds = eta(figures)
        if seconds is not None:
            value, unit = rounded(seconds)
            lines.append(_(f"status_eta_{unit}", value=value))
        return _details(job, "\n".join(lines))


async def refreshed_lately(redis: Redis, job: Job) -> bool:
    """An edit of this job went within `refresh_every`: no need to work out a new text."""
    return bool(await redis.exists(EDITED_PREFIX + job.id))


async def claim_refresh(redis: Redis, job: Job, text: str) -> bool:
    """Whether `text` may be shown now: it differs from the last one shown and no edit of
    this job went within `refresh_every` (the claim holds for that long, whoever shows it)."""
    shown = await redis.get(SHOWN_PREFIX + job.id)
    if shown is not None and shown.decode() == text:
        return False
    every = int(refresh_every(job.chat_id) * 1000)
    if not await redis.set(EDITED_PREFIX + job.id, 1, nx=True, px=every):
        return False
    await redis.set(SHOWN_PREFIX + job.id, text, ex=SHOWN_TTL)
    return True


def caption(job: Job) -> str:
    """The prompt that was used (trimmed to fit Telegram's caption limit): the helper's, marked
    ✨, else the user's; the model's name and the style's, and the step of a chain of edits
    after its first (v2, v3…)."""
    model = catalog().find(job.model)
    title = html.escape(model.title if model else job.model)
    style = catalog().style(job.options.get("style"))
    if style is not None:
        title += f" · {html.escape(style.title_in(job.language))}"
    improved = job.options.get("improved_prompt")
    used = f"✨ {improved}" if improved else job.prompt
    with use_locale(job.language):
        if job.step > 1:
            title += " · " + _("chain_step", step=job.step)
        room = CAPTION_LIMIT - len(_("caption", prompt="", model=title)) - 1
        prompt = used if len(used) <= room else used[: room - 1] + "…"
        return _("caption", prompt=html.escape(prompt), model=title)


def failure_text(job: Job) -> str:
    """Why the job failed, in its language, with the numbers error texts quote (photo caps)."""
    mode = catalog().modes.get(job.mode)  # type: ignore[call-overload]
    limit_mb = round(mode.max_input_mb) if mode else 10
    with use_locale(job.language):
        return error_text(job.error, limit_mb=limit_mb, max_side=MAX_INPUT_SIDE)


async def post_status(bot: Bot, job: Job, text: str) -> int | None:
    """The new job's status message; its id, or None when this chat cannot have one.

    Telegram down or flooded is not caught: the handler runs again (the inbox keeps its
    update), so the status message is not lost to one failed call."""
    try:
        status = await bot.send_message(job.chat_id, text, reply_markup=status_keyboard(job))
    except (TelegramBadRequest, TelegramForbiddenError):
        return None  # the job goes on; only its progress display is lost
    return status.message_id


def unseen(message: Message) -> int | None:
    """The message a launch reacts to when it sends no status message: none in a private
    chat, where the webhook reacted as it stored the message."""
    return None if message.chat.type == PRIVATE else message.message_id


async def acknowledge(bot: Bot, chat_id: int, message_id: int) -> None:
    """A reaction on the user's message: seen, the job is on its way. A courtesy: when
    Telegram refuses it (reactions off in that chat), the job goes on."""
    try:
        await bot.set_message_reaction(
            chat_id, message_id, reaction=[ReactionTypeEmoji(emoji=SEEN_EMOJI)]
        )
    except TelegramAPIError as exc:
        log.info("no reaction on message %s in chat %s: %s", message_id, chat_id, exc)


async def show_progress(outbox: Outbox, job: Job, text: str) -> None:
    if job.status_message_id is None:
        return
    try:
        await outbox.progress.edit_message_text(
            text,
            chat_id=job.chat_id,
            message_id=job.status_message_id,
            reply_markup=status_keyboard(job),
        )
    except SendSkipped:
        return
    except TelegramAPIError as exc:
        log.info("status message of job %s not edited: %s", job.id, exc)


async def show_cancelled(bot: Bot, job: Job, *, requested: bool = False) -> None:
    """The status message says the job was cancelled, or, `requested`, that fal is asked to
    stop it and what that costs: called from the Cancel button's handler, so in the language
    of who cancelled it (the update's). The Cancel button goes."""
    if job.status_message_id is None:
        return
    with contextlib.suppress(TelegramBadRequest):
        await bot.edit_message_text(
            _("status_cancel_requested" if requested else "status_cancelled"),
            chat_id=job.chat_id,
            message_id=job.status_message_id,
        )


async def remove_status(bot: Bot, job: Job) -> None:
    if job.status_message_id is None:
        return
    try:
        await bot.delete_message(job.chat_id, job.status_message_id)
    except TelegramAPIError as exc:
        log.info("status message of job %s not deleted: %s", job.id, exc)


async def show_again(bot: Bot, job: Job, chat_id: int) -> list[int]:
    """The job's delivered result sent again from Telegram's file ids (nothing downloaded,
    nothing made), with its caption and buttons; the ids of the messages that show it.
    Telegram refuses a file id sent as another kind than it was (a result too big for a photo
    went as a document): each is sent as the kind kept at delivery. A result delivered before
    kinds were kept is tried as photos, and as documents when Telegram refuses that."""
    result = job.result or {}
    file_ids: list[str] = result.get("telegram_file_ids") or []
    kinds: list[FileKind] = result.get("telegram_file_kinds") or []
    if len(kinds) == len(file_ids):
        return await _send_again(bot, job, chat_id, list(zip(file_ids, kinds, strict=True)))
    try:
        return await _send_again(bot, job, chat_id, [(f, "photo") for f in file_ids])
    except TelegramBadRequest as exc:
        if NOT_THIS_KIND not in exc.message:
            raise
        return await _send_again(bot, job, chat_id, [(f, "document") for f in file_ids])


async def _send_again(
    bot: Bot, job: Job, chat_id: int, files: list[tuple[str, FileKind]]
) -> list[int]:
    """One message with the caption and buttons, or an album followed by them (an album
    cannot carry buttons)."""
    output = output_of(job, job.result or {})
    text, buttons = caption(job), result_keyboard(job, output)
    if len(files) == 1:
        [(file_id, kind)] = files
        match kind:
            case "photo":
                message = await bot.send_photo(chat_id, file_id, caption=text, reply_markup=buttons)
            case "video":
                message = await bot.send_video(chat_id, file_id, caption=text, reply_markup=buttons)
            case "document":
                message = await bot.send_document(
                    chat_id, file_id, caption=text, reply_markup=buttons
                )
        return [message.message_id]
    album = await bot.send_media_group(chat_id, [ALBUM_ITEMS[kind](media=f) for f, kind in files])
    await bot.send_message(chat_id, text, reply_markup=buttons)
    return [message.message_id for message in album]
