"""Inline keyboards and their callback data.

Buttons carry only a job id and an action: everything else is in the database, so buttons
keep working after a restart and on any api process.
"""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.texts import t
from core.catalog import Output


class Action(StrEnum):
    CANCEL = "x"
    REGENERATE = "r"
    EDIT = "e"
    ANIMATE = "a"
    ORIGINAL = "o"


class JobButton(CallbackData, prefix="j"):
    action: Action
    job_id: str


class PhotoChoice(StrEnum):
    EDIT = "edit"
    RETOUCH = "retouch"
    ANIMATE = "animate"


class PhotoButton(CallbackData, prefix="p"):
    choice: PhotoChoice


def status_keyboard(job_id: str, lang: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=t(lang, "button_cancel"), callback_data=JobButton(action=Action.CANCEL, job_id=job_id)
    )
    return builder.as_markup()


def result_keyboard(job_id: str, lang: str, output: Output) -> InlineKeyboardMarkup:
    """Regenerate and Original for every result; Edit and Animate only make sense for pictures."""
    actions = [Action.REGENERATE]
    if output != "video":
        actions += [Action.EDIT, Action.ANIMATE]
    actions.append(Action.ORIGINAL)
    labels = {
        Action.REGENERATE: "button_regenerate",
        Action.EDIT: "button_edit",
        Action.ANIMATE: "button_animate",
        Action.ORIGINAL: "button_original",
    }
    builder = InlineKeyboardBuilder()
    for action in actions:
        builder.button(
            text=t(lang, labels[action]), callback_data=JobButton(action=action, job_id=job_id)
        )
    builder.adjust(2)
    return builder.as_markup()


def photo_keyboard(lang: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    labels = {
        PhotoChoice.EDIT: "button_edit",
        PhotoChoice.RETOUCH: "button_retouch",
        PhotoChoice.ANIMATE: "button_animate",
    }
    for choice, label in labels.items():
        builder.button(text=t(lang, label), callback_data=PhotoButton(choice=choice))
    return builder.as_markup()
