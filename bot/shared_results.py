"""A delivered result as an inline result: what inline mode lists and what the Mini App's
Share button prepares. Telegram's own copy of the file is used (the file ids kept at
delivery), so sharing sends nothing again and never expires with fal's links.

Each file is offered as the kind it was sent as (photo, video, document: Telegram refuses a
file id used as another), kept at delivery next to its id (`telegram_file_kinds`). A result
delivered before kinds were kept has ids only: their kind is read from the id itself
(core/telegram/file_ids.py), and an id it cannot read is left out."""

from __future__ import annotations

from aiogram.types import (
    InlineQueryResultCachedDocument,
    InlineQueryResultCachedPhoto,
    InlineQueryResultCachedVideo,
    InlineQueryResultUnion,
)

from core.domain.models import Job
from core.telegram.file_ids import FileKind, file_kind

CAPTION_LIMIT = 1024
TITLE_LIMIT = 64


def shared_results(job: Job) -> list[InlineQueryResultUnion]:
    """One inline result per file Telegram holds for the job (none for a result sent as
    links); each id is the job's id and the file's place, so it names the job back."""
    file_ids = (job.result or {}).get("telegram_file_ids") or []
    kinds = (job.result or {}).get("telegram_file_kinds") or []
    found: list[InlineQueryResultUnion] = []
    for index, file_id in enumerate(file_ids):
        kind = kinds[index] if index < len(kinds) else file_kind(str(file_id))
        result = _cached(f"{job.id}-{index}", str(file_id), kind, job.prompt)
        if result is not None:
            found.append(result)
    return found


def _cached(
    result_id: str, file_id: str, kind: FileKind | None, prompt: str
) -> InlineQueryResultUnion | None:
    caption = prompt[:CAPTION_LIMIT] or None
    title = _short(prompt) or "kadr"
    match kind:
        case "photo":
            return InlineQueryResultCachedPhoto(
                id=result_id, photo_file_id=file_id, caption=caption, parse_mode=None
            )
        case "video":
            return InlineQueryResultCachedVideo(
                id=result_id, video_file_id=file_id, title=title, caption=caption, parse_mode=None
            )
        case "document":
            return InlineQueryResultCachedDocument(
                id=result_id,
                document_file_id=file_id,
                title=title,
                caption=caption,
                parse_mode=None,
            )
    return None


def _short(text: str) -> str:
    return text if len(text) <= TITLE_LIMIT else text[: TITLE_LIMIT - 1] + "…"
