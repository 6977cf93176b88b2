"""Files a bot sends: a multipart upload, a file_id seen before, or a URL Telegram downloads."""

from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from .errors import bad_request, entity_too_large
from .files import CHUNK, FileStore, StoredFile, image_size
from .params import MB, Upload
from .state import Sandbox

PHOTO_URL_LIMIT = 5 * MB
FILE_URL_LIMIT = 20 * MB
PHOTO_UPLOAD_LIMIT = 10 * MB
FILE_UPLOAD_LIMIT = 50 * MB
MAX_PHOTO_SIDES_SUM = 10_000
MAX_PHOTO_RATIO = 20
WRONG_FILE = "wrong file identifier/HTTP URL specified"


async def input_file(
    sandbox: Sandbox, uploads: dict[str, Upload], kind: str, value: Any, field: str
) -> StoredFile:
    """``value`` is the request's field (or a media item's ``media``); ``field`` names a part
    that may carry the file directly, as curl users send it."""
    upload = _upload(uploads, value, field)
    if upload is not None:
        limit = PHOTO_UPLOAD_LIMIT if kind == "photo" else FILE_UPLOAD_LIMIT
        if len(upload.data) > limit:
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
        raise bad_request("wrong type of the web page content")
    return store_bytes(sandbox.files, kind, data, content_type, file_name)


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
