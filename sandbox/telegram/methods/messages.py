"""Text messages and the methods that change or remove any message."""

import time
from typing import Any

from ..errors import bad_request
from ..state import Chat
from .content import MEDIA_KEYS, caption_content, inline_markup, text_content
from .registry import Call, bot_method

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
COPIED_KEYS = ("text", "entities", "caption", "caption_entities", *MEDIA_KEYS)
MAX_DELETED_AT_ONCE = 100


@bot_method("sendMessage", is_message=True)
async def send_message(call: Call) -> dict[str, Any]:
    chat = call.chat()
    content = text_content(call.params)
    return chat.post(call.bot, {**content, "reply_markup": inline_markup(call.get("reply_markup"))})


def editable(call: Call) -> tuple[Chat, dict[str, Any]]:
    """The chat and the bot's own message an edit method names."""
    chat = call.chat()
    message_id = call.integer("message_id", "message identifier is not specified")
    message = chat.messages.get(message_id)
    if message is None:
        raise bad_request("message to edit not found")
    if not message["from"].get("is_bot"):
        raise bad_request("message can't be edited")
    return chat, message


def apply_edit(chat: Chat, message: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A None change removes the field; an edit that changes nothing is refused like Telegram."""
    if all(message.get(key) == value for key, value in changes.items()):
        raise bad_request(NOT_MODIFIED)
    for key, value in changes.items():
        if value is None:
            message.pop(key, None)
        else:
            message[key] = value
    message["edit_date"] = int(time.time())
    chat.changed(message["message_id"])
    return message


@bot_method("editMessageText", is_message=True)
async def edit_message_text(call: Call) -> dict[str, Any]:
    chat, message = editable(call)
    if "text" not in message:
        raise bad_request("there is no text in the message to edit")
    markup = inline_markup(call.get("reply_markup"))
    return apply_edit(chat, message, {**text_content(call.params), "reply_markup": markup})


@bot_method("editMessageCaption", is_message=True)
async def edit_message_caption(call: Call) -> dict[str, Any]:
    chat, message = editable(call)
    if not any(key in message for key in MEDIA_KEYS):
        raise bad_request("there is no caption in the message to edit")
    markup = inline_markup(call.get("reply_markup"))
    return apply_edit(chat, message, {**caption_content(call.params), "reply_markup": markup})


@bot_method("editMessageReplyMarkup", is_message=True)
async def edit_message_reply_markup(call: Call) -> dict[str, Any]:
    chat, message = editable(call)
    return apply_edit(chat, message, {"reply_markup": inline_markup(call.get("reply_markup"))})


#: The emoji a bot may react with (Bot API, ReactionTypeEmoji).
REACTION_EMOJI = frozenset(
    [
        "👍",
        "👎",
        "❤",
        "🔥",
        "🥰",
        "👏",
        "😁",
        "🤔",
        "🤯",
        "😱",
        "🤬",
        "😢",
        "🎉",
        "🤩",
        "🤮",
        "💩",
        "🙏",
        "👌",
        "🕊",
        "🤡",
        "🥱",
        "🥴",
        "😍",
        "🐳",
        "❤\u200d🔥",
        "🌚",
        "🌭",
        "💯",
        "🤣",
        "⚡",
        "🍌",
        "🏆",
        "💔",
        "🤨",
        "😐",
        "🍓",
        "🍾",
        "💋",
        "🖕",
        "😈",
        "😴",
        "😭",
        "🤓",
        "👻",
        "👨\u200d💻",
        "👀",
        "🎃",
        "🙈",
        "😇",
        "😨",
        "🤝",
        "✍",
        "🤗",
        "🫡",
        "🎅",
        "🎄",
        "☃",
        "💅",
        "🤪",
        "🗿",
        "🆒",
        "💘",
        "🙉",
        "🦄",
        "😘",
        "💊",
        "🙊",
        "😎",
        "👾",
        "🤷\u200d♂",
        "🤷",
        "🤷\u200d♀",
        "😡",
    ]
)


@bot_method("setMessageReaction")
async def set_message_reaction(call: Call) -> bool:
    """A reaction is not a message: Telegram's limits (Bot FAQ) speak of messages sent, and a
    reaction sends none, so the stand-in's flood control leaves it out. A bot sets at most one
    reaction; an empty or absent list removes its reaction."""
    chat = call.chat()
    message_id = call.integer("message_id", "message identifier is not specified")
    message = chat.messages.get(message_id)
    if message is None:
        raise bad_request("message to react not found")
    reaction = call.get("reaction") or []
    if not isinstance(reaction, list):
        raise bad_request("can't parse reaction types JSON object")
    if len(reaction) > 1:
        raise bad_request("REACTIONS_TOO_MANY")
    for item in reaction:
        if not isinstance(item, dict) or item.get("type") != "emoji":
            raise bad_request("REACTION_INVALID")
        if item.get("emoji") not in REACTION_EMOJI:
            raise bad_request("REACTION_INVALID")
    if reaction:
        message["bot_reaction"] = reaction
    else:
        message.pop("bot_reaction", None)
    chat.changed(message_id)
    return True


@bot_method("deleteMessage")
async def delete_message(call: Call) -> bool:
    chat = call.chat()
    message_id = call.integer("message_id", "message identifier is not specified")
    if not chat.delete(message_id):
        raise bad_request("message to delete not found")
    return True


@bot_method("deleteMessages")
async def delete_messages(call: Call) -> bool:
    """Telegram skips ids it cannot delete and still answers true."""
    chat = call.chat()
    message_ids = call.require("message_ids")
    if not isinstance(message_ids, list) or not 1 <= len(message_ids) <= MAX_DELETED_AT_ONCE:
        raise bad_request("message_ids is invalid")
    for message_id in message_ids:
        chat.delete(message_id)
    return True


@bot_method("copyMessage", is_message=True)
async def copy_message(call: Call) -> dict[str, int]:
    source = call.world.chats.get(call.integer("from_chat_id", "chat not found"))
    if source is None:
        raise bad_request("chat not found")
    original = source.messages.get(
        call.integer("message_id", "message identifier is not specified")
    )
    if original is None:
        raise bad_request("message to copy not found")
    chat = call.chat()
    content = {key: original[key] for key in COPIED_KEYS if key in original}
    if call.get("caption") is not None:
        content.update(caption_content(call.params))
    content["reply_markup"] = inline_markup(call.get("reply_markup"))
    return {"message_id": chat.post(call.bot, content)["message_id"]}
