"""Files a bot sends: a multipart upload, a file_id seen before, or a URL Telegram downloads.

The Bot API's limits (its "Sending files" section and sendPhoto): a photo is at most 10 MB
uploaded and 5 MB by URL, its width + height at most 10,000 and its side ratio at most 20
(`PHOTO_INVALID_DIMENSIONS`; an upload over 10 MB is `PHOTO_SAVE_FILE_INVALID`, as Telegram's
photo storage answers); other files at most 50 MB uploaded, 20 MB by URL; "in sendDocument,
sending by URL will currently only work for GIF, PDF and ZIP files". A thumbnail is a JPEG
under 200 kB, at most 320 a side, uploaded with its file.
"""

from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from .errors import bad_request, entity_too_large
from .files import CHUNK, FileStore, StoredFile, image_size, photo_size
from .params import MB, Upload
from .state import Sandbox

PHOTO_URL_LIMIT = 5 * MB
FILE_URL_LIMIT = 20 * MB
PHOTO_UPLOAD_LIMIT = 10 * MB
FILE_UPLOAD_LIMIT = 50 * MB
MAX_PHOTO_SIDES_SUM = 10_000
MAX_PHOTO_RATIO = 20
WRONG_FILE = "wrong file identifier/HTTP URL specified"
WRONG_CONTENT = "wrong type of the web page content"
DOCUMENT_URL_TYPES = frozenset({"image/gif", "application/pdf", "application/zip"})
THUMBNAIL_BYTES = 200 * 1024
THUMBNAIL_MAX_SIDE = 320


async def input_file(
    sandbox: Sandbox, uploads: dict[str, Upload], kind: str, value: Any, field: str
) -> StoredFile:
    """``value`` is the request's field (or a media item's ``media``); ``field`` names a part
    that may carry the file directly, as curl users send it."""
    upload = _upload(uploads, value, field)
    if upload is not None:
        if kind == "photo" and len(upload.data) > PHOTO_UPLOAD_LIMIT:
            raise bad_request("PHOTO_SAVE_FILE_INVALID")
        if len(upload.data) > FILE_UPLOAD_LIMIT:
            raise entity_too_large()
        return store_bytes(sandbox.files, kind, upload.data, upload.content_type, upload.filename)
    if not isinstance(value, str) or not value:
        raise bad_request(f"there is no {kind} in the request")
    known = sandbox.files.get(value)
    if known is not None:
        if known.kind != kind:
            raise bad_request(
                f"can't use file of type {known.kind.capitalize()} as {kind.capitalize()}"
            )
        return sandbox.files.reissue(known)
    if value.startswith(("http://", "https://")):
        return await _from_url(sandbox, kind, value)
    raise bad_request(WRONG_FILE)


def store_bytes(
    files: FileStore, kind: str, data: bytes, content_type: str | None, file_name: str | None
) -> StoredFile:
    """Photos are checked like Telegram checks them; other files are taken as they are."""
    mime = None if content_type in (None, "application/octet-stream") else content_type
    if kind != "photo":
        return files.add(kind, data=data, mime_type=mime, file_name=file_name)
    size = image_size(data)
    if size is None:
        raise bad_request("IMAGE_PROCESS_FAILED")
    width, height = size
    if width + height > MAX_PHOTO_SIDES_SUM or max(width, height) > MAX_PHOTO_RATIO * min(
        width, height
    ):
        raise bad_request("PHOTO_INVALID_DIMENSIONS")
    return files.add("photo", data=data, width=width, height=height)


def _upload(uploads: dict[str, Upload], value: Any, field: str) -> Upload | None:
    if isinstance(value, str) and value.startswith("attach://"):
        upload = uploads.get(value.removeprefix("attach://"))
        if upload is None:
            raise bad_request(WRONG_FILE)
        return upload
    return uploads.get(field) if value is None else None


async def _from_url(sandbox: Sandbox, kind: str, url: str) -> StoredFile:
    file_name = PurePosixPath(urlsplit(url).path).name or None
    if not sandbox.fetch_urls:
        return sandbox.files.add(kind, url=url, file_name=None if kind == "photo" else file_name)
    limit = PHOTO_URL_LIMIT if kind == "photo" else FILE_URL_LIMIT
    data, content_type = await fetch(sandbox.http, url, limit)
    if kind == "photo" and content_type == "text/html":
        raise bad_request(WRONG_CONTENT)
    if kind == "document" and content_type not in DOCUMENT_URL_TYPES:
        raise bad_request(WRONG_CONTENT)
    return store_bytes(sandbox.files, kind, data, content_type, file_name)


def thumbnail(sandbox: Sandbox, uploads: dict[str, Upload], value: Any) -> dict[str, Any] | None:
    """The PhotoSize of a file's thumbnail, when one came as Telegram takes it (uploaded with
    the file, a JPEG within its limits); any other is ignored, as Telegram may ignore it."""
    upload = _upload(uploads, value, "thumbnail") if value is not None else None
    if upload is None or len(upload.data) >= THUMBNAIL_BYTES:
        return None
    size = image_size(upload.data, "JPEG")
    if size is None or max(size) > THUMBNAIL_MAX_SIDE:
        return None
    width, height = size
    return photo_size(sandbox.files.add("photo", data=upload.data, width=width, height=height))


async def fetch(http: aiohttp.ClientSession, url: str, limit: int) -> tuple[bytes, str]:
    """Downloads like Telegram: a 200 answer no bigger than ``limit``, or the one error it gives."""
    failed = bad_request("failed to get HTTP URL content")
    try:
        async with http.get(url) as response:
            if response.status != 200 or (response.content_length or 0) > limit:
                raise failed
            body = bytearray()
            async for chunk in response.content.iter_chunked(CHUNK):
                body += chunk
                if len(body) > limit:
                    raise failed
            return bytes(body), response.content_type
    except (aiohttp.ClientError, TimeoutError):
        raise failed from None
