"""Methods that send or replace files: sendPhoto and friends, albums, editMessageMedia."""

import asyncio
import secrets
from typing import Any

from ..errors import bad_request
from ..files import message_media
from ..inputs import input_file, thumbnail
from .content import MEDIA_KEYS, caption_content, inline_markup
from .messages import apply_edit, editable
from .registry import Call, Handler, bot_method

SENDERS = {
    "sendPhoto": "photo",
    "sendVideo": "video",
    "sendDocument": "document",
    "sendAnimation": "animation",
}
ALBUM_KINDS = frozenset({"photo", "video", "document", "audio"})
ALBUM_MIN = 2
ALBUM_MAX = 10


def _sender(kind: str) -> Handler:
    async def send(call: Call) -> dict[str, Any]:
        chat = call.chat()
        caption = caption_content(call.params)
        markup = inline_markup(call.get("reply_markup"))
        stored = await input_file(call.sandbox, call.uploads, kind, call.get(kind), kind)
        media = message_media(call.sandbox.files, stored, call.params)
        preview = thumbnail(call.sandbox, call.uploads, call.get("thumbnail"))
        if preview is not None and kind != "photo":
            media[kind]["thumbnail"] = preview
        return chat.post(call.bot, {**media, **caption, "reply_markup": markup})

    return send


for _name, _kind in SENDERS.items():
    bot_method(_name, is_message=True)(_sender(_kind))


def media_item(item: Any, kinds: frozenset[str]) -> dict[str, Any]:
    if not isinstance(item, dict) or item.get("type") not in kinds:
        raise bad_request("can't parse InputMedia JSON object")
    return item


@bot_method("sendMediaGroup", is_message=True)
async def send_media_group(call: Call) -> list[dict[str, Any]]:
    chat = call.chat()
    items = call.get("media")
    if not isinstance(items, list) or len(items) < ALBUM_MIN:
        raise bad_request("there must be at least two items in the media group")
    if len(items) > ALBUM_MAX:
        raise bad_request("too much messages to send as an album")
    items = [media_item(item, ALBUM_KINDS) for item in items]
    captions = [caption_content(item) for item in items]
    stored = await asyncio.gather(
        *(
            input_file(call.sandbox, call.uploads, item["type"], item.get("media"), "")
            for item in items
        )
    )
    group_id = str(secrets.randbelow(10**18))
    return [
        chat.post(
            call.bot,
            {
                **message_media(call.sandbox.files, file, item),
                **caption,
                "media_group_id": group_id,
            },
        )
        for item, caption, file in zip(items, captions, stored, strict=True)
    ]


@bot_method("editMessageMedia", is_message=True)
async def edit_message_media(call: Call) -> dict[str, Any]:
    chat, message = editable(call)
    if not any(key in message for key in MEDIA_KEYS):
        raise bad_request("there is no media in the message to edit")
    item = media_item(call.get("media"), ALBUM_KINDS | {"animation"})
    markup = inline_markup(call.get("reply_markup"))
    caption = caption_content(item)
    stored = await input_file(call.sandbox, call.uploads, item["type"], item.get("media"), "")
    changes = {
        **dict.fromkeys(MEDIA_KEYS),
        **message_media(call.sandbox.files, stored, item),
        **caption,
        "reply_markup": markup,
    }
    return apply_edit(chat, message, changes)
