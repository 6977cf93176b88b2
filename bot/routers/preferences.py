"""The user's preferences: the model per mode, aspect ratio, number of images and the prompt
helper (off by default), on inline keyboards that edit one message in place. Choices are
stored on the user row (`preferences`); the style is chosen in /styles and shown here.

The command stays `/settings`, the name Telegram recommends for it (core commands list)."""

from __future__ import annotations

import contextlib

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import _
from bot.routers.language import language_keyboard
from core.domain.catalog import ASPECT_RATIOS, MAX_IMAGES, MODES, catalog
from core.domain.models import User
from core.domain.preferences import Preferences, change_preferences, preferences_of

router = Router(name="preferences")


class PreferencesButton(CallbackData, prefix="s"):
    """`what`: menu, mode (open a mode's models), model (index in the catalog), aspect (index
    in ASPECT_RATIOS: a ratio's colon is the callback data separator), images, improve (the
    prompt helper: "1" on, "0" off), language.
    The prefix stays "s": buttons on messages already sent in chats carry it."""

    what: str
    value: str = ""


def summary(preferences: Preferences, language: str) -> str:
    models = {mode: preferences.model_for(mode).title for mode in MODES}
    style = catalog().style(preferences.style)
    extras = _(
        "preferences_extras",
        helper=_("helper_on" if preferences.improve_prompts else "helper_off"),
        style=style.title_in(language) if style else _("style_none"),
    )
    return _(
        "preferences_title",
        summary=_(
            "preferences_summary",
            aspect_ratio=preferences.aspect_ratio,
            num_images=preferences.num_images,
            **models,
        )
        + "\n"
        + extras,
    )


def menu_keyboard(preferences: Preferences) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for mode in MODES:
        builder.button(
            text=_(f"mode_{mode}"), callback_data=PreferencesButton(what="mode", value=mode)
        )
    for index, ratio in enumerate(ASPECT_RATIOS):
        mark = "• " if ratio == preferences.aspect_ratio else ""
        button = PreferencesButton(what="aspect", value=str(index))
        builder.button(text=f"{mark}{ratio}", callback_data=button)
    for count in range(1, MAX_IMAGES + 1):
        mark = "• " if count == preferences.num_images else ""
        builder.button(
            text=f"{mark}🖼 {count}",
            callback_data=PreferencesButton(what="images", value=str(count)),
        )
    helper = "preferences_helper_on" if preferences.improve_prompts else "preferences_helper_off"
    # The button carries the value it sets, not "toggle": an update handled twice sets it twice.
    turn_to = "0" if preferences.improve_prompts else "1"
    builder.button(text=_(helper), callback_data=PreferencesButton(what="improve", value=turn_to))
    builder.button(text=_("preferences_language"), callback_data=PreferencesButton(what="language"))
    builder.adjust(3, 2, len(ASPECT_RATIOS), MAX_IMAGES, 1, 1)
    return builder.as_markup()


def models_keyboard(mode: str, preferences: Preferences) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    chosen = preferences.model_for(mode).id  # type: ignore[arg-type]
    for index, model in enumerate(catalog().models):
        if model.mode == mode:
            mark = "• " if model.id == chosen else ""
            builder.button(
                text=f"{mark}{model.title} · {model.price}⭐",
                callback_data=PreferencesButton(what="model", value=str(index)),
            )
    builder.button(text=_("preferences_back"), callback_data=PreferencesButton(what="menu"))
    builder.adjust(1)
    return builder.as_markup()


@router.message(Command("settings"))
async def show_preferences(message: Message, user: User) -> None:
    preferences = preferences_of(user)
    await message.answer(
        summary(preferences, user.language), reply_markup=menu_keyboard(preferences)
    )


@router.callback_query(PreferencesButton.filter(F.what == "language"))
async def choose_language(query: CallbackQuery) -> None:
    await query.answer()
    await query.message.edit_text(  # type: ignore[union-attr]
        _("language_prompt"), reply_markup=language_keyboard()
    )


@router.callback_query(PreferencesButton.filter(F.what == "mode"))
async def choose_model(query: CallbackQuery, callback_data: PreferencesButton, user: User) -> None:
    await query.answer()
    preferences = preferences_of(user)
    await query.message.edit_text(  # type: ignore[union-attr]
        _("preferences_choose_model", mode=_(f"mode_{callback_data.value}")),
        reply_markup=models_keyboard(callback_data.value, preferences),
    )


@router.callback_query(
    PreferencesButton.filter(F.what.in_({"menu", "model", "aspect", "images", "improve"}))
)
async def change(
    query: CallbackQuery,
    callback_data: PreferencesButton,
    user: User,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        preferences = await change_preferences(
            session, user.id, lambda chosen: _apply(chosen, callback_data)
        )
    await query.answer()
    with contextlib.suppress(TelegramBadRequest):  # "message is not modified": same choice again
        await query.message.edit_text(  # type: ignore[union-attr]
            summary(preferences, user.language), reply_markup=menu_keyboard(preferences)
        )


def _apply(preferences: Preferences, button: PreferencesButton) -> None:
    """Ignores values that are no longer valid (an old button, an edited catalog)."""
    models = catalog().models
    if button.what == "model" and button.value.isdigit() and int(button.value) < len(models):
        model = models[int(button.value)]
        preferences.models[model.mode] = model.id
    elif (
        button.what == "aspect"
        and button.value.isdigit()
        and int(button.value) < len(ASPECT_RATIOS)
    ):
        preferences.aspect_ratio = ASPECT_RATIOS[int(button.value)]
    elif (
        button.what == "images" and button.value.isdigit() and 1 <= int(button.value) <= MAX_IMAGES
    ):
        preferences.num_images = int(button.value)
    elif button.what == "improve" and button.value in ("0", "1"):
        preferences.improve_prompts = button.value == "1"
