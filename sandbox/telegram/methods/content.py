"""Message content shared by the send, edit and copy methods: text, captions, inline keyboards."""

from collections.abc import Mapping
from typing import Any

from ..errors import bad_request
from ..formatting import parse_html
from .inline import check_web_app

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64
MEDIA_KEYS = ("photo", "video", "animation", "document", "audio")


def formatted(text: str, parse_mode: Any, entities: Any) -> tuple[str, list[Any] | None]:
    """Explicit entities win over parse_mode; Markdown modes are passed through unparsed."""
    if entities is not None:
        if not isinstance(entities, list):
            raise bad_request("can't parse entities JSON object")
        return text, entities or None
    if isinstance(parse_mode, str) and parse_mode.lower() == "html":
        text, parsed = parse_html(text)
        return text, parsed or None
    return text, None


def text_content(source: Mapping[str, Any]) -> dict[str, Any]:
    raw = source.get("text")
    if not isinstance(raw, str):
        raise bad_request("message text is empty")
    text, entities = formatted(raw, source.get("parse_mode"), source.get("entities"))
    if not text.strip():
        raise bad_request("message text is empty")
    if len(text) > TEXT_LIMIT:
        raise bad_request("message is too long")
    return {"text": text, "entities": entities}


def caption_content(source: Mapping[str, Any]) -> dict[str, Any]:
    """Keys map to None when absent so an edit removes the old caption, as Telegram does."""
    raw = source.get("caption")
    if not isinstance(raw, str) or not raw:
        return {"caption": None, "caption_entities": None}
    caption, entities = formatted(raw, source.get("parse_mode"), source.get("caption_entities"))
    if len(caption) > CAPTION_LIMIT:
        raise bad_request("message caption is too long")
    return {"caption": caption or None, "caption_entities": entities}


def inline_markup(markup: Any) -> dict[str, Any] | None:
    """Only inline keyboards belong to a message; reply keyboards live in the user's app."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    keyboard = markup.get("inline_keyboard")
    if not keyboard:
        return None
    if not isinstance(keyboard, list) or not all(isinstance(row, list) for row in keyboard):
        raise bad_request(
            "can't parse inline keyboard button: inline_keyboard must be an Array of Arrays"
        )
    for row in keyboard:
        for button in row:
            _check_button(button)
    return markup


def _check_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    data = button.get("callback_data")
    if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_LIMIT:
        raise bad_request("BUTTON_DATA_INVALID")
    if "web_app" in button:
        check_web_app(button["web_app"])
