"""Every file the stand-in has seen, addressable by file_id and by getFile's file_path.

Bytes are kept in memory and shared by content hash, so a benchmark that sends the same picture
ten thousand times holds it once. With URL fetching off only the URL is kept.
"""

import asyncio
import hashlib
import io
import itertools
import mimetypes
import secrets
from dataclasses import dataclass
from typing import Any

from PIL import Image

CHUNK = 64 * 1024
THUMBNAIL_SIDE = 320
DEFAULT_PHOTO_SIDE = 1280
FILE_ID_PREFIX = {
    "photo": "AgACAgIAAxkBAA",
    "video": "BAACAgIAAxkBAA",
    "animation": "CgACAgIAAxkBAA",
    "document": "BQACAgIAAxkBAA",
    "audio": "CQACAgIAAxkBAA",
}
FOLDER = {
    "photo": "photos",
    "video": "videos",
    "animation": "animations",
    "document": "documents",
    "audio": "music",
}
DEFAULT_MIME = {
    "photo": "image/jpeg",
    "video": "video/mp4",
    "animation": "video/mp4",
    "document": "application/octet-stream",
    "audio": "audio/mpeg",
}


@dataclass(slots=True)
class StoredFile:
    file_id: str
    file_unique_id: str
    kind: str
    file_path: str
    mime_type: str
    file_name: str | None
    data: bytes | None
    url: str | None
    width: int | None = None
    height: int | None = None
    thumbnail_of: "StoredFile | None" = None

    @property
    def size(self) -> int | None:
        return None if self.data is None else len(self.data)


def image_size(data: bytes, *formats: str) -> tuple[int, int] | None:
    """Reads only the image header: cheap enough for every photo sent. `formats`: the only
    ones taken (Pillow's names), when not any."""
    try:
        with Image.open(io.BytesIO(data), formats=formats or None) as image:
            return image.size
    except Exception:  # Pillow raises many types for "not an image"
        return None


def scaled(width: int, height: int, side: int) -> tuple[int, int]:
    ratio = min(1.0, side / max(width, height, 1))
    return max(1, round(width * ratio)), max(1, round(height * ratio))


def make_thumbnail(data: bytes) -> bytes | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=80)
            return out.getvalue()
    except Exception:  # an undecodable photo keeps its full bytes as the thumbnail
        return None


class FileStore:
    def __init__(self) -> None:
        self._by_id: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._blobs: dict[str, bytes] = {}
        self._thumbnails: dict[str, bytes] = {}
        self._counter = itertools.count(1)

    def get(self, file_id: str) -> StoredFile | None:
        return self._by_id.get(file_id)

    def by_path(self, file_path: str) -> StoredFile | None:
        return self._by_path.get(file_path)

    def add(
        self,
        kind: str,
        *,
        data: bytes | None = None,
        url: str | None = None,
        mime_type: str | None = None,
        file_name: str | None = None,
        width: int | None = None,
        height: int | None = None,
        thumbnail_of: StoredFile | None = None,
    ) -> StoredFile:
        number = next(self._counter)
        if data is not None:
            digest = hashlib.sha256(data).hexdigest()
            data = self._blobs.setdefault(digest, data)
        else:
            digest = hashlib.sha256((url or "").encode()).hexdigest()
        unique_id = f"{thumbnail_of.file_unique_id}t" if thumbnail_of else f"AQAD{digest[:16]}"
        mime = mime_type or _guess_mime(file_name) or DEFAULT_MIME[kind]
        extension = mimetypes.guess_extension(mime) or ".bin"
        stored = StoredFile(
            file_id=f"{FILE_ID_PREFIX[kind]}{number:x}{secrets.token_urlsafe(18)}",
            file_unique_id=unique_id,
            kind=kind,
            file_path=f"{FOLDER[kind]}/file_{number}{extension}",
            mime_type=mime,
            file_name=file_name,
            data=data,
            url=url,
            width=width,
            height=height,
            thumbnail_of=thumbnail_of,
        )
        self._by_id[stored.file_id] = stored
        self._by_path[stored.file_path] = stored
        return stored

    def reissue(self, original: StoredFile) -> StoredFile:
        """Telegram hands out a fresh file_id on every send, even of a known file."""
        return self.add(
            original.kind,
            data=original.data,
            url=original.url,
            mime_type=original.mime_type,
            file_name=original.file_name,
            width=original.width,
            height=original.height,
        )

    def thumbnail(self, full: StoredFile) -> StoredFile:
        """Sizes are computed now; the pixels are made on the first download (most never are)."""
        width, height = scaled(
            full.width or DEFAULT_PHOTO_SIDE, full.height or DEFAULT_PHOTO_SIDE, THUMBNAIL_SIDE
        )
        return self.add("photo", url=full.url, width=width, height=height, thumbnail_of=full)

    async def content(self, stored: StoredFile) -> bytes | None:
        source = stored.thumbnail_of
        if stored.data is None and source is not None and source.data is not None:
            key = source.file_unique_id
            if key not in self._thumbnails:
                made = await asyncio.to_thread(make_thumbnail, source.data)
                self._thumbnails[key] = made or source.data
            stored.data = self._thumbnails[key]
        return stored.data

    def photo_sizes(self, full: StoredFile) -> list[dict[str, Any]]:
        return [photo_size(self.thumbnail(full)), photo_size(full)]


def photo_size(stored: StoredFile) -> dict[str, Any]:
    size: dict[str, Any] = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "width": stored.width or DEFAULT_PHOTO_SIDE,
        "height": stored.height or DEFAULT_PHOTO_SIDE,
    }
    if stored.size is not None:
        size["file_size"] = stored.size
    return size


def media_object(stored: StoredFile, params: dict[str, Any]) -> dict[str, Any]:
    """Video/Animation/Document/Audio as Telegram describes them; sizes come from the request."""
    obj: dict[str, Any] = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "mime_type": stored.mime_type,
    }
    if stored.file_name:
        obj["file_name"] = stored.file_name
    if stored.size is not None:
        obj["file_size"] = stored.size
    if stored.kind in ("video", "animation"):
        obj["width"] = params.get("width") or stored.width or 0
        obj["height"] = params.get("height") or stored.height or 0
    if stored.kind in ("video", "animation", "audio"):
        obj["duration"] = params.get("duration") or 0
    return obj


def _guess_mime(file_name: str | None) -> str | None:
    return mimetypes.guess_type(file_name)[0] if file_name else None


def message_media(files: FileStore, stored: StoredFile, params: dict[str, Any]) -> dict[str, Any]:
    """Message fields for a sent file; an animation also shows as a document, as on Telegram."""
    if stored.kind == "photo":
        return {"photo": files.photo_sizes(stored)}
    obj = media_object(stored, params)
    if stored.kind == "animation":
        return {"animation": obj, "document": obj}
    return {stored.kind: obj}
