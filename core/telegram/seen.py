"""The 👀 reaction that tells a user their message is in the bot's hands, given by the webhook
the moment the inbox has stored it.

It rides in the webhook's own answer: Telegram runs a Bot API method given as the body of the
answer to an update (Bot API, "Making requests when getting updates"). So it costs no request
of kadr's, it is not a message (Telegram's limits, Bot FAQ, count messages; the stand-in
leaves reactions out of its flood control), and it comes before any handler runs, however
long the inbox's line is at a peak. Telegram does not say whether such a call succeeded: the
reaction is a courtesy, and the job goes on without it.

Only in a private chat, where every message that is not a command asks for something: a
prompt, a photo to edit, a reply to change a picture. In a group, whether a message is for
the bot takes its username (bot/filters.py), so there the handler reacts itself when it
sends no status message (bot/launch.py).
"""

from __future__ import annotations

import json
from typing import Any

SEEN_EMOJI = "👀"
PRIVATE = "private"


def seen_on_receipt(update: dict[str, Any]) -> tuple[int, int] | None:
    """The chat and message the webhook reacts to for this raw update, or None: a private
    chat's new message with text that is not a command, a photo or a file."""
    message = update.get("message")
    if not isinstance(message, dict):
        return None
    chat = message.get("chat")
    if not isinstance(chat, dict) or chat.get("type") != PRIVATE:
        return None
    text = message.get("text")
    asks = (isinstance(text, str) and not text.startswith("/")) or bool(
        message.get("photo") or message.get("document")
    )
    chat_id, message_id = chat.get("id"), message.get("message_id")
    if not asks or not isinstance(chat_id, int) or not isinstance(message_id, int):
        return None
    return chat_id, message_id


def reaction_answer(chat_id: int, message_id: int) -> bytes:
    """The webhook answer's body that has Telegram set the reaction."""
    call = {
        "method": "setMessageReaction",
        "chat_id": chat_id,
        "message_id": message_id,
        "reaction": [{"type": "emoji", "emoji": SEEN_EMOJI}],
    }
    return json.dumps(call).encode()
