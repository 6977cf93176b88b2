"""The keyboard that asks what to do with a photo, and its callback data.

A job's own buttons (Cancel on its status, the buttons under its result) are in
`bot/job_messages.py`.
"""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.i18n import _


class PhotoChoice(StrEnum):
    EDIT = "edit"
    RETOUCH = "retouch"
    ANIMATE = "animate"


class PhotoButton(CallbackData, prefix="p"):
    choice: PhotoChoice


def photo_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    labels = {
        PhotoChoice.EDIT: "button_edit",
        PhotoChoice.RETOUCH: "button_retouch",
        PhotoChoice.ANIMATE: "button_animate",
    }
    for choice, label in labels.items():
        builder.button(text=_(label), callback_data=PhotoButton(choice=choice))
    return builder.as_markup()
