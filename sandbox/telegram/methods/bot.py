"""Methods about the bot itself rather than a message: identity, webhook, commands, files."""

import json
import re
from typing import Any

from ..errors import bad_request
from ..params import MB
from ..state import Webhook
from .registry import Call, bot_method

SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
DEFAULT_MAX_CONNECTIONS = 40
MAX_CONNECTIONS = 100
MAX_COMMANDS = 100
MAX_COMMAND_DESCRIPTION = 256
DOWNLOAD_LIMIT = 20 * MB
CALLBACK_TEXT_LIMIT = 200
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
NO_WEBHOOK = {"url": "", "has_custom_certificate": False, "pending_update_count": 0}


@bot_method("getMe")
async def get_me(call: Call) -> dict[str, Any]:
    return {
        **call.bot,
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": True,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


@bot_method("setWebhook")
async def set_webhook(call: Call) -> bool:
    url = call.get("url")
    if url is None:
        call.sandbox.webhook = None
        return True
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    secret = call.get("secret_token")
    if secret is not None and not (isinstance(secret, str) and SECRET_TOKEN.fullmatch(secret)):
        raise bad_request("secret token contains unallowed characters")
    max_connections = call.get("max_connections") or DEFAULT_MAX_CONNECTIONS
    if not isinstance(max_connections, int) or not 1 <= max_connections <= MAX_CONNECTIONS:
        raise bad_request("bad webhook: max_connections must be between 1 and 100")
    call.sandbox.webhook = Webhook(
        url=url,
        token=call.token,
        secret_token=secret,
        max_connections=max_connections,
        allowed_updates=_allowed_updates(call),
    )
    return True


def _allowed_updates(call: Call) -> list[str] | None:
    """Not given keeps the previous choice; an empty list restores Telegram's default."""
    allowed = call.get("allowed_updates")
    if allowed is None:
        previous = call.sandbox.webhook
        return previous.allowed_updates if previous else None
    if not isinstance(allowed, list) or not all(isinstance(kind, str) for kind in allowed):
        raise bad_request("can't parse allowed_updates JSON object")
    return allowed or None


@bot_method("deleteWebhook")
async def delete_webhook(call: Call) -> bool:
    call.sandbox.webhook = None
    return True


@bot_method("getWebhookInfo")
async def get_webhook_info(call: Call) -> dict[str, Any]:
    webhook = call.sandbox.webhook
    return webhook.info() if webhook else dict(NO_WEBHOOK)


def commands_key(scope: dict[str, Any] | None, language_code: str | None) -> tuple[str, str]:
    return json.dumps(scope or {"type": "default"}, sort_keys=True), language_code or ""


def _commands_key(call: Call) -> tuple[str, str]:
    return commands_key(call.get("scope"), call.get("language_code"))


@bot_method("setMyCommands")
async def set_my_commands(call: Call) -> bool:
    commands = call.require("commands")
    if not isinstance(commands, list) or len(commands) > MAX_COMMANDS:
        raise bad_request("can't parse commands JSON object")
    for command in commands:
        _check_command(command)
    call.sandbox.commands[_commands_key(call)] = commands
    return True


def _check_command(command: Any) -> None:
    if not isinstance(command, dict) or not COMMAND_NAME.fullmatch(str(command.get("command"))):
        raise bad_request("BOT_COMMAND_INVALID")
    description = command.get("description")
    if not isinstance(description, str) or not 1 <= len(description) <= MAX_COMMAND_DESCRIPTION:
        raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")


@bot_method("getMyCommands")
async def get_my_commands(call: Call) -> list[dict[str, Any]]:
    return call.sandbox.commands.get(_commands_key(call), [])


@bot_method("deleteMyCommands")
async def delete_my_commands(call: Call) -> bool:
    call.sandbox.commands.pop(_commands_key(call), None)
    return True


@bot_method("sendChatAction")
async def send_chat_action(call: Call) -> bool:
    chat = call.chat()
    action = call.get("action")
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    chat.feed.publish(chat.id, "action", action=action)
    return True


@bot_method("answerCallbackQuery")
async def answer_callback_query(call: Call) -> bool:
    """Each query can be answered once, as on Telegram; its text pops up in the chat."""
    query_id = call.get("callback_query_id")
    if query_id not in call.world.callback_queries:
        raise bad_request(QUERY_TOO_OLD)
    text = call.get("text")
    if isinstance(text, str) and len(text) > CALLBACK_TEXT_LIMIT:
        raise bad_request("MESSAGE_TOO_LONG")
    chat_id = call.world.callback_queries.pop(query_id)
    if text:
        call.world.feed.publish(
            chat_id, "toast", text=text, show_alert=bool(call.get("show_alert"))
        )
    return True


@bot_method("getFile")
async def get_file(call: Call) -> dict[str, Any]:
    stored = call.sandbox.files.get(str(call.require("file_id", "invalid file_id")))
    if stored is None:
        raise bad_request("invalid file_id")
    data = await call.sandbox.files.content(stored)
    if data is not None and len(data) > DOWNLOAD_LIMIT:
        raise bad_request("file is too big")
    result: dict[str, Any] = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_path": stored.file_path,
    }
    if data is not None:
        result["file_size"] = len(data)
    return result
