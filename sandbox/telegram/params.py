"""Turns a Bot API request into typed params and uploaded files, whatever encoding aiogram chose.

aiogram sends urlencoded forms without files and multipart with them, nested objects as JSON
strings; other clients send JSON. Telegram decodes fields by their declared type, so do we.
"""

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from .errors import bad_request, entity_too_large
from .multipart import MultipartError, boundary_of, parse_multipart

MB = 1024 * 1024
MAX_BODY = 50 * MB + MB  # the largest upload plus room for the other form fields

JSON_FIELDS = frozenset(
    {
        "allowed_updates",
        "button",
        "caption_entities",
        "commands",
        "entities",
        "link_preview_options",
        "media",
        "menu_button",
        "message_ids",
        "prices",
        "reaction",
        "reply_markup",
        "reply_parameters",
        "result",
        "results",
        "scope",
    }
)
INT_FIELDS = frozenset(
    {
        "cache_time",
        "chat_id",
        "duration",
        "from_chat_id",
        "height",
        "max_connections",
        "message_id",
        "message_thread_id",
        "subscription_period",
        "user_id",
        "width",
    }
)
BOOL_FIELDS = frozenset(
    {
        "allow_bot_chats",
        "allow_channel_chats",
        "allow_group_chats",
        "allow_paid_broadcast",
        "allow_user_chats",
        "is_personal",
        "disable_notification",
        "drop_pending_updates",
        "has_spoiler",
        "is_big",
        "is_canceled",
        "ok",
        "protect_content",
        "show_alert",
        "supports_streaming",
    }
)
INTEGER = re.compile(r"-?\d+")


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes = field(repr=False)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "size": len(self.data),
            "sha256": self.sha256,
        }


def coerce(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if name in JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(f"can't parse {name} JSON object") from None
    if name in INT_FIELDS and INTEGER.fullmatch(value):
        return int(value)
    if name in BOOL_FIELDS:
        return value.lower() in ("true", "1")
    return value


async def read_body(request: Request) -> bytes:
    """Reads at most MAX_BODY bytes: a bigger upload is refused before it fills memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise entity_too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise entity_too_large()
    return bytes(body)


async def read_params(request: Request) -> tuple[dict[str, Any], dict[str, Upload]]:
    raw: dict[str, Any] = dict(request.query_params)
    uploads: dict[str, Upload] = {}
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        body = await read_body(request)
        kind = content_type.partition(";")[0].strip().lower()
        if kind == "multipart/form-data":
            raw.update(_multipart_fields(content_type, body, uploads))
        elif kind == "application/json":
            raw.update(_json_fields(body))
        elif body:
            raw.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return {name: coerce(name, value) for name, value in raw.items()}, uploads


def _json_fields(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        decoded = json.loads(body)
    except ValueError:
        raise bad_request("can't parse JSON object") from None
    if not isinstance(decoded, dict):
        raise bad_request("can't parse JSON object")
    return decoded


def _multipart_fields(content_type: str, body: bytes, uploads: dict[str, Upload]) -> dict[str, str]:
    try:
        parts = parse_multipart(body, boundary_of(content_type))
    except MultipartError as error:
        raise bad_request(f"can't parse multipart/form-data: {error}") from None
    fields: dict[str, str] = {}
    for part in parts:
        if part.filename is None:
            fields[part.name] = part.data.decode("utf-8", "replace")
        else:
            content = part.content_type or "application/octet-stream"
            uploads[part.name] = Upload(part.filename, content, part.data)
    return fields
