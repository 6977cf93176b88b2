"""Photos: with a caption, an edit as the caption says; without one, a choice of edit,
retouch or animate. An image sent as a file counts as a photo.

The photo is checked on Telegram's metadata here (size, type, dimensions), so a file that
cannot work is refused before any job exists; the worker checks the real bytes later.
"""

from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message

from bot.filters import Picture, PlainText
from bot.i18n import _, error_text
from bot.keyboards import PhotoButton, PhotoChoice, photo_keyboard
from bot.launch import Launcher
from core.domain.catalog import MAX_INPUT_SIDE, Mode, catalog
from core.domain.models import User
from core.fal.photos import PhotoLimits, PhotoRejected, precheck
from core.jobs.start import JobRequest, Refusal, check_prompt

router = Router(name="photos")

CHOICE_MODES: dict[PhotoChoice, Mode] = {
    PhotoChoice.EDIT: "edit",
    PhotoChoice.RETOUCH: "retouch",
    PhotoChoice.ANIMATE: "image_to_video",
}


class PhotoFlow(StatesGroup):
    choosing = State()
    instruction = State()


def photo_of(message: Message) -> dict[str, Any]:
    """What we know of the message's image: the largest size of a photo, or the document."""
    if message.photo:
        largest = message.photo[-1]
        return {
            "image_file_id": largest.file_id,
            "file_size": largest.file_size,
            "width": largest.width,
            "height": largest.height,
            "mime_type": None,
        }
    document = message.document
    assert document is not None
    return {
        "image_file_id": document.file_id,
        "file_size": document.file_size,
        "width": None,
        "height": None,
        "mime_type": document.mime_type or "application/octet-stream",
    }


def _check(photo: dict[str, Any], mode: Mode) -> None:
    limits = PhotoLimits(max_bytes=catalog().modes[mode].max_input_bytes, max_side=MAX_INPUT_SIDE)
    precheck(
        file_size=photo["file_size"],
        mime_type=photo["mime_type"],
        width=photo["width"],
        height=photo["height"],
        limits=limits,
    )


def _refusal_text(rejected: PhotoRejected, mode: Mode) -> str:
    limit_mb = round(catalog().modes[mode].max_input_mb)
    return error_text(f"photo_{rejected.reason}", limit_mb=limit_mb, max_side=MAX_INPUT_SIDE)


@router.message(Picture())
async def on_photo(
    message: Message, caption: str | None, user: User, launcher: Launcher, state: FSMContext
) -> None:
    photo = photo_of(message)
    mode: Mode = "edit"
    try:
        _check(photo, mode)
    except PhotoRejected as rejected:
        await message.answer(_refusal_text(rejected, mode))
        return
    if caption is None:
        await state.set_state(PhotoFlow.choosing)
        await state.set_data({"photo": photo})
        await message.reply(_("photo_what"), reply_markup=photo_keyboard())
        return
    await _start(message, user, launcher, mode, caption, photo)


@router.callback_query(PhotoButton.filter())
async def on_choice(
    query: CallbackQuery,
    callback_data: PhotoButton,
    user: User,
    launcher: Launcher,
    state: FSMContext,
) -> None:
    photo = (await state.get_data()).get("photo")
    message = query.message
    if photo is None or not isinstance(message, Message):
        await query.answer(_("photo_gone"), show_alert=True)
        return
    await query.answer()
    mode = CHOICE_MODES[callback_data.choice]
    try:
        _check(photo, mode)
    except PhotoRejected as rejected:
        await message.answer(_refusal_text(rejected, mode))
        return
    if mode == "edit":
        await state.set_state(PhotoFlow.instruction)
        await message.answer(_("photo_ask_instruction"))
        return
    await state.clear()
    prompt = _("animate_default_prompt") if mode == "image_to_video" else ""
    await _launch(
        message, user, launcher, JobRequest(mode=mode, prompt=prompt, options=_input(photo))
    )


@router.message(PhotoFlow.instruction, PlainText())
async def on_instruction(
    message: Message, prompt: str, user: User, launcher: Launcher, state: FSMContext
) -> None:
    """The text after ✏️ Edit (of a sent photo or of a result) is the edit instruction."""
    data = await state.get_data()
    await state.clear()
    source = data.get("photo") or {"image_url": data.get("image_url")}
    await _start(message, user, launcher, "edit", prompt, source)


async def _start(
    message: Message,
    user: User,
    launcher: Launcher,
    mode: Mode,
    prompt: str | None,
    photo: dict[str, Any],
) -> None:
    try:
        request = JobRequest(mode=mode, prompt=check_prompt(prompt), options=_input(photo))
    except Refusal as refusal:
        key = "photo_ask_instruction" if refusal.key == "prompt_empty" else refusal.key
        await message.answer(_(key, **refusal.values))
        return
    await _launch(message, user, launcher, request)


async def _launch(message: Message, user: User, launcher: Launcher, request: JobRequest) -> None:
    await launcher.launch(
        message.bot,  # type: ignore[arg-type]
        message.chat.id,
        user,
        request,
        ack_message_id=message.message_id,
    )


def _input(photo: dict[str, Any]) -> dict[str, Any]:
    """Only what the job needs: a Telegram file to fetch, or a URL fal already has."""
    return {key: photo[key] for key in ("image_file_id", "image_url") if photo.get(key)}
