"""Messages as a person sees them in the chat, for tests reading a chat and for the chat page."""

from typing import Any


def _file_ref(obj: dict[str, Any], base_url: str) -> dict[str, Any]:
    ref: dict[str, Any] = {
        key: obj[key]
        for key in ("file_id", "width", "height", "duration", "file_name", "mime_type", "file_size")
        if key in obj
    }
    ref["url"] = f"{base_url}/_sandbox/files/{obj['file_id']}"
    return ref


def message_view(message: dict[str, Any], base_url: str) -> dict[str, Any]:
    """A message as the person sees it: who wrote it, what it shows, whether it was edited."""
    view: dict[str, Any] = {
        "message_id": message["message_id"],
        "from_bot": bool(message["from"].get("is_bot")),
        "date": message["date"],
        "edited": "edit_date" in message,
    }
    for key in (
        "text",
        "entities",
        "caption",
        "caption_entities",
        "reply_markup",
        "media_group_id",
        "invoice",
        "successful_payment",
        "via_bot",
    ):
        if key in message:
            view[key] = message[key]
    if "photo" in message:
        view["photo"] = _file_ref(message["photo"][-1], base_url)
    kind = _kind(message)
    if kind in ("video", "animation", "audio", "document"):
        view[kind] = _file_ref(message[kind], base_url)
    if "reply_to_message" in message:
        view["reply_to"] = _quote(message["reply_to_message"])
    return view


def _kind(message: dict[str, Any]) -> str | None:
    return next(
        (key for key in ("photo", "video", "animation", "audio", "document") if key in message),
        None,
    )


def _quote(replied: dict[str, Any]) -> dict[str, Any]:
    """What a reply shows of the message it answers: whose it was and a line of it."""
    return {
        "message_id": replied["message_id"],
        "from_bot": bool(replied["from"].get("is_bot")),
        "kind": _kind(replied),
        "text": replied.get("text") or replied.get("caption") or "",
    }
