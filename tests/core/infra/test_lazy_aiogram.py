"""aiogram's types and methods are left unbuilt by `import aiogram` (installed by the library
patches, core/infra/patches/lazy_aiogram.py) and still validate and serialize as aiogram means
them to on first use."""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime
from typing import Any

import aiogram.methods
import aiogram.types
from aiogram.filters.callback_data import CallbackData
from aiogram.methods import SendMessage
from aiogram.methods.base import Response, TelegramMethod
from aiogram.types import (
    CallbackQuery,
    ChatBoostRemoved,
    ChatBoostSourceGiveaway,
    ChatBoostUpdated,
    ChatInviteLink,
    InlineKeyboardMarkup,
    Message,
    PhotoSize,
    TelegramObject,
    Update,
)
from aiogram.utils.keyboard import InlineKeyboardBuilder

import core.infra.patches.lazy_aiogram

TYPES = [
    value
    for name in aiogram.types.__all__
    if isinstance(value := getattr(aiogram.types, name), type) and issubclass(value, TelegramObject)
]
METHODS = [
    value
    for name in aiogram.methods.__all__
    if isinstance(value := getattr(aiogram.methods, name), type)
    and issubclass(value, TelegramMethod)
    and value is not TelegramMethod
]

USER = {"id": 42, "is_bot": False, "first_name": "Ann", "language_code": "en"}
CHAT = {"id": 42, "type": "private", "first_name": "Ann", "username": "ann"}
KEYBOARD = {
    "inline_keyboard": [
        [{"text": "Photo", "callback_data": "mode:photo"}, {"text": "Site", "url": "https://e.x/"}]
    ]
}
PHOTO_UPDATE: dict[str, Any] = {
    "update_id": 10,
    "message": {
        "message_id": 5,
        "date": 1700000000,
        "chat": CHAT,
        "from": USER,
        "caption": "make it blue",
        "caption_entities": [{"type": "bold", "offset": 0, "length": 4}],
        "photo": [
            {"file_id": "a", "file_unique_id": "ua", "width": 90, "height": 90, "file_size": 100},
            {"file_id": "b", "file_unique_id": "ub", "width": 800, "height": 600},
        ],
        "reply_to_message": {"message_id": 4, "date": 1699999999, "chat": CHAT, "text": "hi"},
    },
}
BOT_MESSAGE: dict[str, Any] = {
    "message_id": 6,
    "date": 1700000001,
    "chat": CHAT,
    "from": {"id": 1, "is_bot": True, "first_name": "kadr"},
    "text": "Choose",
    "reply_markup": KEYBOARD,
}
CALLBACK_UPDATE = {
    "update_id": 11,
    "callback_query": {
        "id": "cq1",
        "from": USER,
        "chat_instance": "ci",
        "data": "mode:photo",
        "message": BOT_MESSAGE,
    },
}


def built(models: list[type[Any]]) -> int:
    return sum(1 for model in models if model.__pydantic_complete__)


def test_import_leaves_most_types_and_methods_unbuilt() -> None:
    # Eager aiogram builds every one of them at import. Tests that ran before this one have
    # built the few they used; a whole process uses a few dozen of the ~600.
    assert len(TYPES) > 350 and len(METHODS) > 150
    assert built(TYPES) < len(TYPES) / 4
    assert built(METHODS) < len(METHODS) / 4
    # Nothing below has used these yet.
    assert not ChatBoostUpdated.__pydantic_complete__
    assert not ChatBoostRemoved.__pydantic_complete__
    assert not ChatInviteLink.__pydantic_complete__


def test_a_type_builds_on_first_use_before_the_types_it_holds() -> None:
    assert not ChatBoostSourceGiveaway.__pydantic_complete__  # one of the types it holds
    removed = ChatBoostRemoved.model_validate(
        {
            "chat": {"id": -100, "type": "channel", "title": "News"},
            "boost_id": "b1",
            "remove_date": 1700000000,
            "source": {"source": "giveaway", "giveaway_message_id": 7, "is_unclaimed": True},
        }
    )
    assert ChatBoostRemoved.__pydantic_complete__
    assert removed.chat.title == "News"
    assert removed.remove_date == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert isinstance(removed.source, ChatBoostSourceGiveaway)
    assert removed.source.giveaway_message_id == 7


def test_a_type_builds_inside_another_model_before_its_own_use() -> None:
    answer = Response[ChatBoostUpdated].model_validate(
        {
            "ok": True,
            "result": {
                "chat": {"id": -100, "type": "channel"},
                "boost": {
                    "boost_id": "b2",
                    "add_date": 1700000000,
                    "expiration_date": 1702592000,
                    "source": {"source": "premium", "user": USER},
                },
            },
        }
    )
    assert not ChatBoostUpdated.__pydantic_complete__  # built inside Response[...] only
    assert answer.result is not None
    assert answer.result.boost.source.user.first_name == "Ann"  # type: ignore[union-attr]
    # Its own serializer now builds it.
    dumped = answer.result.model_dump(exclude_none=True)
    assert dumped["boost"]["source"] == {"source": "premium", "user": USER}


def test_first_use_resolves_names_in_aiogram_not_in_the_callers_locals() -> None:
    # pydantic's own deferred rebuild would read the calling frame: `creator: User` would be
    # this dict.
    User = dict
    link = ChatInviteLink.model_validate(
        {
            "invite_link": "https://t.me/+x",
            "creator": USER,
            "creates_join_request": False,
            "is_primary": True,
            "is_revoked": False,
        }
    )
    assert not isinstance(link.creator, User)
    assert link.creator.id == 42


def test_a_full_update_validates_and_dumps() -> None:
    update = Update.model_validate(PHOTO_UPDATE)
    message = update.message
    assert isinstance(message, Message)
    assert message.chat.username == "ann"
    assert message.from_user is not None and message.from_user.language_code == "en"
    assert [photo.width for photo in message.photo or []] == [90, 800]
    assert all(isinstance(photo, PhotoSize) for photo in message.photo or [])
    assert message.caption_entities is not None and message.caption_entities[0].type == "bold"
    assert message.reply_to_message is not None and message.reply_to_message.text == "hi"
    assert message.date == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)

    dumped = update.model_dump(by_alias=True, exclude_none=True)
    assert dumped["message"]["from"] == USER
    assert dumped["message"]["photo"][1] == PHOTO_UPDATE["message"]["photo"][1]
    assert Update.model_validate_json(update.model_dump_json()) == update

    callback = Update.model_validate(CALLBACK_UPDATE).callback_query
    assert isinstance(callback, CallbackQuery)
    assert isinstance(callback.message, Message)
    markup = callback.message.reply_markup
    assert isinstance(markup, InlineKeyboardMarkup)
    assert markup.inline_keyboard[0][0].callback_data == "mode:photo"
    assert markup.model_dump(exclude_none=True) == KEYBOARD


class Mode(CallbackData, prefix="mode"):
    name: str


def test_methods_keyboards_and_bot_api_answers() -> None:
    keyboard = InlineKeyboardBuilder()
    keyboard.button(text="Photo", callback_data=Mode(name="photo"))
    keyboard.button(text="Site", url="https://e.x/")
    keyboard.adjust(2)
    markup = keyboard.as_markup()
    assert markup.model_dump(exclude_none=True) == KEYBOARD
    assert Mode.unpack("mode:photo") == Mode(name="photo")

    method = SendMessage(chat_id=42, text="got it", reply_markup=markup)
    assert method.model_dump(exclude_none=True)["reply_markup"] == KEYBOARD

    sent = Response[Message].model_validate({"ok": True, "result": {**BOT_MESSAGE, "text": "ok"}})
    assert sent.ok and sent.result is not None and sent.result.text == "ok"
    assert sent.result.reply_markup == markup
    failed = Response[Message].model_validate(
        {"ok": False, "error_code": 429, "description": "Too", "parameters": {"retry_after": 3}}
    )
    assert failed.parameters is not None and failed.parameters.retry_after == 3


def test_names_bound_in_type_modules_are_the_ones_aiogram_passes() -> None:
    # The names a type's module had already are left alone: they must be aiogram's objects too.
    namespace = {name: getattr(aiogram.types, name) for name in aiogram.types.__all__}
    identifier = re.compile(r"[A-Za-z_]\w*")
    for typ in TYPES:
        module = inspect.getmodule(typ)
        for cls in typ.__mro__:
            for annotation in inspect.get_annotations(cls).values():
                for name in identifier.findall(str(annotation)):
                    if name in namespace:
                        assert vars(module).get(name) is namespace[name], (typ, name)


def test_install_again_is_a_no_op() -> None:
    core.infra.patches.lazy_aiogram.install()
    assert built(TYPES) < len(TYPES) / 4
