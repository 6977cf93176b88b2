"""Inline mode and Mini Apps: answering an inline query, a prepared message for a Mini App
to share, and the chat's menu button. Checked as Telegram checks them: a result names a file
of its own kind, ids are unique and short, a start parameter is 1-64 of A-Z a-z 0-9 _ -, a
Web App URL is HTTPS (plain http only on a loopback address, for the demo and tests)."""

import ipaddress
import re
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from ..errors import bad_request
from ..state import Prepared
from .bot import QUERY_TOO_OLD
from .registry import Call, bot_method

MAX_RESULTS = 50
RESULT_ID_BYTES = 64
NEXT_OFFSET_BYTES = 64
START_PARAMETER = re.compile(r"[A-Za-z0-9_-]{1,64}")
PREPARED_LIFETIME = 24 * 3600
CAPTION_LIMIT = 1024
#: Cached result type → (its file id field, the kind of file it must name, title required).
CACHED: dict[str, tuple[str, str, bool]] = {
    "photo": ("photo_file_id", "photo", False),
    "video": ("video_file_id", "video", True),
    "document": ("document_file_id", "document", True),
}
CHAT_TYPES = {
    "allow_user_chats": "users",
    "allow_bot_chats": "bots",
    "allow_group_chats": "groups",
    "allow_channel_chats": "channels",
}


@bot_method("answerInlineQuery")
async def answer_inline_query(call: Call) -> bool:
    query_id = str(call.get("inline_query_id"))
    if query_id not in call.world.inline_queries:
        raise bad_request(QUERY_TOO_OLD)
    results = call.require("results", "RESULTS_TOO_MUCH")
    if not isinstance(results, list):
        raise bad_request("can't parse results JSON object")
    if len(results) > MAX_RESULTS:
        raise bad_request("RESULTS_TOO_MUCH")
    ids = [check_result(call, result) for result in results]
    if len(set(ids)) != len(ids):
        raise bad_request("RESULT_ID_DUPLICATE")
    cache_time = call.get("cache_time")
    if cache_time is not None and (not isinstance(cache_time, int) or cache_time < 0):
        raise bad_request("cache_time is invalid")
    next_offset = call.get("next_offset")
    if next_offset is not None and len(str(next_offset).encode()) > NEXT_OFFSET_BYTES:
        raise bad_request("NEXT_OFFSET_INVALID")
    _check_results_button(call.get("button"))
    call.world.inline_queries.pop(query_id)
    return True


def check_result(call: Call, result: Any) -> str:
    """A cached photo, video or document result as Telegram takes it; its id."""
    if not isinstance(result, dict):
        raise bad_request("can't parse inline query result")
    result_id = result.get("id")
    if not isinstance(result_id, str) or not 1 <= len(result_id.encode()) <= RESULT_ID_BYTES:
        raise bad_request("RESULT_ID_INVALID")
    shape = CACHED.get(str(result.get("type")))
    if shape is None:
        raise bad_request("RESULT_TYPE_INVALID")
    field, kind, needs_title = shape
    stored = call.sandbox.files.get(str(result.get(field)))
    if stored is None:
        raise bad_request("wrong file identifier/HTTP URL specified")
    if stored.kind != kind:
        raise bad_request(
            f"can't use file of type {stored.kind.capitalize()} as {kind.capitalize()}"
        )
    if needs_title and not (isinstance(result.get("title"), str) and result["title"]):
        raise bad_request("RESULT_TITLE_EMPTY")
    caption = result.get("caption")
    if caption is not None and (not isinstance(caption, str) or len(caption) > CAPTION_LIMIT):
        raise bad_request("MEDIA_CAPTION_TOO_LONG")
    return result_id


def _check_results_button(button: Any) -> None:
    if button is None:
        return
    if (
        not isinstance(button, dict)
        or not isinstance(button.get("text"), str)
        or not button["text"]
    ):
        raise bad_request("can't parse InlineQueryResultsButton JSON object")
    parameter, web_app = button.get("start_parameter"), button.get("web_app")
    if (parameter is None) == (web_app is None):
        raise bad_request("can't parse InlineQueryResultsButton JSON object")
    if parameter is not None and not START_PARAMETER.fullmatch(str(parameter)):
        raise bad_request("START_PARAM_INVALID")
    if web_app is not None:
        check_web_app(web_app)


def check_web_app(web_app: Any) -> str:
    """The URL of a WebAppInfo."""
    url = web_app.get("url") if isinstance(web_app, dict) else None
    if not isinstance(url, str) or not _web_app_url(url):
        raise bad_request("BUTTON_URL_INVALID")
    return url


def _web_app_url(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


@bot_method("savePreparedInlineMessage")
async def save_prepared_inline_message(call: Call) -> dict[str, Any]:
    user_id = call.integer("user_id", "USER_ID_INVALID")
    if user_id <= 0:  # any user is one who started the bot, as everywhere in the stand-in
        raise bad_request("USER_ID_INVALID")
    result = call.require("result", "can't parse inline query result")
    check_result(call, result)
    chat_types = frozenset(kind for name, kind in CHAT_TYPES.items() if call.get(name) is True)
    if not chat_types:
        raise bad_request("PEER_TYPES_INVALID")
    prepared_id = secrets.token_urlsafe(12)
    expires_at = int(time.time()) + PREPARED_LIFETIME
    call.world.prepared[prepared_id] = Prepared(user_id, result, chat_types, expires_at)
    return {"id": prepared_id, "expiration_date": expires_at}


@bot_method("setChatMenuButton")
async def set_chat_menu_button(call: Call) -> bool:
    chat_id = call.get("chat_id")
    if chat_id is not None and (not isinstance(chat_id, int) or chat_id <= 0):
        raise bad_request("chat not found")
    button = call.get("menu_button") or {"type": "default"}
    if not isinstance(button, dict) or button.get("type") not in ("commands", "web_app", "default"):
        raise bad_request("can't parse menu button JSON object")
    if button["type"] == "web_app":
        if not isinstance(button.get("text"), str) or not button["text"]:
            raise bad_request("can't parse menu button JSON object")
        check_web_app(button.get("web_app"))
    call.sandbox.menu_buttons[chat_id] = button
    return True


@bot_method("getChatMenuButton")
async def get_chat_menu_button(call: Call) -> dict[str, Any]:
    return menu_button(call.sandbox.menu_buttons, call.get("chat_id"))


def menu_button(buttons: dict[int | None, dict[str, Any]], chat_id: Any) -> dict[str, Any]:
    """A chat's own button, else the default the bot set, else Telegram's (the commands)."""
    return buttons.get(chat_id) or buttons.get(None) or {"type": "commands"}
