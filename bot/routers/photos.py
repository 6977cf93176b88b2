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
from aiogram.types import CallbackQuery, Message, Update

from bot.filters import Picture, PlainText
from bot.i18n import _, error_text
from bot.keyboards import PhotoButton, PhotoChoice, photo_keyboard
from bot.launch import Launcher
from bot.launch_from import launch_from_message
from core.domain.catalog import MAX_INPUT_SIDE, Mode, catalog
from core.domain.models import User
from core.domain.preferences import preferences_of
from core.fal.photos import PhotoLimits, PhotoRejected, precheck
from core.jobs.start import JobRequest, Refusal, check_prompt

router = Router(name="photos")

CHOICE_MODES: dict[PhotoChoice, Mode] = {
    PhotoChoice.EDIT: "edit",
    PhotoChoice.RETOUCH: "retouch",
    PhotoChoice.ANIMATE: "image_to_video",
}


#: The state's key for the press that used its photos (`_spend`).
USED_BY = "used_by"


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
    if "image_file_id" not in photo:
        return  # a result: fal's own file, nothing to judge
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
    message: Message,
    caption: str | None,
    user: User,
    launcher: Launcher,
    state: FSMContext,
    event_update: Update,
) -> None:
    photo = photo_of(message)
    mode: Mode = "edit"
    try:
        _check(photo, mode)
    except PhotoRejected as rejected:
        await message.answer(_refusal_text(rejected, mode))
        return
    await offer_or_start(message, user, launcher, state, caption, [photo], event_update.update_id)


async def offer_or_start(
    message: Message,
    user: User,
    launcher: Launcher,
    state: FSMContext,
    caption: str | None,
    photos: list[dict[str, Any]],
    update_id: int,
) -> None:
    """With a caption, an edit of the photos as it says; without, the choice (once, for an
    album too)."""
    if caption is None:
        await state.set_state(PhotoFlow.choosing)
        await state.set_data({"photos": photos})
        question = _("album_what", count=len(photos)) if len(photos) > 1 else _("photo_what")
        await message.reply(question, reply_markup=photo_keyboard())
        return
    await _start(message, user, launcher, "edit", caption, photos, update_id)


@router.callback_query(PhotoButton.filter())
async def on_choice(
    query: CallbackQuery,
    callback_data: PhotoButton,
    user: User,
    launcher: Launcher,
    state: FSMContext,
    event_update: Update,
) -> None:
    data = await state.get_data()
    photos = _photos_of(data) if data.get(USED_BY) in (None, event_update.update_id) else []
    message = query.message
    if not photos or not isinstance(message, Message):
        await query.answer(_("photo_gone"), show_alert=True)
        return
    await query.answer()
    mode = CHOICE_MODES[callback_data.choice]
    if mode == "edit":
        try:
            _check(photos[0], mode)
        except PhotoRejected as rejected:
            await message.answer(_refusal_text(rejected, mode))
            return
        await state.set_state(PhotoFlow.instruction)
        await message.answer(_("photo_ask_instruction"))
        return
    prompt = _("animate_default_prompt") if mode == "image_to_video" else ""
    await _launch_photos(message, user, launcher, mode, prompt, photos, event_update.update_id)
    await _spend(state, data, event_update.update_id)


@router.message(PhotoFlow.instruction, PlainText())
async def on_instruction(
    message: Message,
    prompt: str,
    user: User,
    launcher: Launcher,
    state: FSMContext,
    event_update: Update,
) -> None:
    """The text after ✏️ Edit (of a sent photo or of a result) is the edit instruction."""
    data = await state.get_data()
    photos = _photos_of(data) or [{"image_url": data.get("image_url")}]
    await _start(message, user, launcher, "edit", prompt, photos, event_update.update_id)
    await state.clear()  # after the job: a crash before it keeps the photos


async def _spend(state: FSMContext, data: dict[str, Any], update_id: int) -> None:
    """The photos are used: a later press is told they are gone. They stay, marked with the
    press that used them, for that press run again (after a crash, even after a whole run):
    it must make its first run's calls (the replay rule, bot/routers/__init__.py), and finds
    its job by the update id (bot/launch.py) instead of a second one."""
    await state.set_state(None)
    await state.set_data({**data, USED_BY: update_id})


def _photos_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The photos a choice is about (a state stored as one "photo" before albums, too)."""
    photos: list[dict[str, Any]] = data.get("photos") or []
    return photos or ([data["photo"]] if data.get("photo") else [])


async def _start(
    message: Message,
    user: User,
    launcher: Launcher,
    mode: Mode,
    prompt: str | None,
    photos: list[dict[str, Any]],
    update_id: int,
) -> None:
    try:
        checked = check_prompt(prompt)
    except Refusal as refusal:
        key = "photo_ask_instruction" if refusal.key == "prompt_empty" else refusal.key
        await message.answer(_(key, **refusal.values))
        return
    await _launch_photos(message, user, launcher, mode, checked, photos, update_id)


async def _launch_photos(
    message: Message,
    user: User,
    launcher: Launcher,
    mode: Mode,
    prompt: str,
    photos: list[dict[str, Any]],
    update_id: int,
) -> None:
    """A job of as many of the photos as the user's model for `mode` takes (the first ones;
    the user is told when some are left out), each checked for the mode first. A user who
    has not chosen a model gets the first that takes them all (or the most)."""
    preferences = preferences_of(user)
    chosen = mode in preferences.models or len(photos) == 1
    model = preferences.model_for(mode) if chosen else catalog().for_photos(mode, len(photos))
    used = model.photos(photos)
    for photo in used:
        try:
            _check(photo, mode)
        except PhotoRejected as rejected:
            await message.answer(_refusal_text(rejected, mode))
            return
    if len(used) < len(photos):
        key = "album_first_photo" if len(used) == 1 else "album_first_photos"
        await message.answer(_(key, model=model.title, count=len(used), sent=len(photos)))
    request = JobRequest(mode=mode, prompt=prompt, options=_input(used), model=model)
    await launch_from_message(launcher, message, user, request, update_id)


def _input(photos: list[dict[str, Any]]) -> dict[str, Any]:
    """Only what the job needs: a Telegram file to fetch, or a URL fal already has; the
    Telegram files of several photos."""
    if len(photos) > 1:
        return {"image_file_ids": [photo["image_file_id"] for photo in photos]}
    photo = photos[0]
    return {key: photo[key] for key in ("image_file_id", "image_url") if photo.get(key)}
