"""fal's storage: upload tokens, streamed uploads, the public CDN, and input downloads.

Files live on disk and only their index is in memory, so a benchmark's thousands of outputs
and uploads cost disk, not the stand-in's RAM.
"""

import asyncio
import hashlib
import json
import mimetypes
import re
import secrets
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from sandbox.fal.calls import Call, CallLog, Gate, base_url, detail, key_auth

UPLOAD_LIMIT = 100 * 1024 * 1024
DOWNLOAD_LIMIT = 50 * 1024 * 1024
TOKEN_TTL = timedelta(hours=1)
_DOWNLOAD_TIMEOUT = httpx.Timeout(30.0)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")

Producer = Callable[[Path], tuple[int, int] | None]
"""Writes a file at the path (in a worker thread); returns its pixel size if it is an image."""


@dataclass(frozen=True, slots=True)
class StoredFile:
    file_id: str
    name: str
    path: Path
    content_type: str
    size: int | None
    """None until a deferred file is first downloaded."""
    dimensions: tuple[int, int] | None = None

    def url(self, base: str) -> str:
        return f"{base}/cdn/files/{self.file_id}/{quote(self.name)}"


def safe_name(name: str, content_type: str) -> str:
    cleaned = _UNSAFE_NAME.sub("_", Path(name).name).strip("._")
    return cleaned or "file" + (mimetypes.guess_extension(content_type) or ".bin")


@dataclass(frozen=True, slots=True)
class _Recipe:
    name: str
    content_type: str
    produce: Producer


class FileStore:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._files: dict[str, StoredFile] = {}
        self._pending: dict[str, asyncio.Task[StoredFile]] = {}
        self._recipes: dict[str, _Recipe] = {}

    def get(self, file_id: str, name: str) -> StoredFile | None:
        stored = self._files.get(file_id)
        return stored if stored is not None and stored.name == name else None

    def place(self, file_id: str, name: str) -> Path:
        folder = self._root / file_id
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    def add(self, stored: StoredFile) -> None:
        self._files[stored.file_id] = stored

    async def produce(
        self, key: str, name: str, content_type: str, produce: Producer
    ) -> StoredFile:
        """Content-addressed: equal keys share one file, and concurrent requests one render."""
        if (stored := self._files.get(key)) is not None:
            return stored
        task = self._pending.get(key)
        if task is None:
            task = asyncio.create_task(self._produce(key, name, content_type, produce))
            self._pending[key] = task
            task.add_done_callback(lambda _: self._pending.pop(key, None))
        # Shielded: a cancelled request must not abort a render other requests wait for.
        return await asyncio.shield(task)

    def defer(
        self, key: str, name: str, content_type: str, dimensions: tuple[int, int], produce: Producer
    ) -> StoredFile:
        """Produced on its first download, so outputs nobody fetches cost no rendering.

        Benchmarks push hundreds of requests a second at a stand-in with a core or two.
        """
        if (stored := self._files.get(key)) is not None:
            return stored
        self._recipes.setdefault(key, _Recipe(name, content_type, produce))
        return StoredFile(key, name, self._root / key / name, content_type, None, dimensions)

    async def fetch(self, file_id: str, name: str) -> StoredFile | None:
        """For downloads: a deferred file is produced now, once."""
        recipe = self._recipes.get(file_id)
        if recipe is not None and recipe.name == name:
            await self.produce(file_id, recipe.name, recipe.content_type, recipe.produce)
            self._recipes.pop(file_id, None)
        return self.get(file_id, name)

    async def _produce(
        self, key: str, name: str, content_type: str, produce: Producer
    ) -> StoredFile:
        path = self.place(key, name)
        dimensions = await asyncio.to_thread(produce, path)
        stored = StoredFile(key, name, path, content_type, path.stat().st_size, dimensions)
        self.add(stored)
        return stored

    async def clear(self) -> None:
        self._files.clear()
        self._recipes.clear()
        await asyncio.to_thread(shutil.rmtree, self._root, True)


class DownloadFailed(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True, slots=True)
class Download:
    path: Path
    digest: str


class Downloader:
    """Fetches model inputs by URL, as fal's runners do, streamed to disk under a size cap."""

    def __init__(self, http: httpx.AsyncClient, calls: CallLog, root: Path) -> None:
        self._http = http
        self._calls = calls
        self._root = root

    async def fetch(self, url: str, request_id: str) -> Download:
        call = self._calls.open("download", "GET", url, request_id=request_id)
        self._root.mkdir(parents=True, exist_ok=True)
        path = self._root / uuid.uuid4().hex
        try:
            digest = await self._stream_to(path, url, call)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return Download(path, digest)

    async def _stream_to(self, path: Path, url: str, call: Call) -> str:
        failed = DownloadFailed(
            "file_download_error",
            "Failed to download the file. Please check if the URL is accessible.",
        )
        if not url.startswith(("http://", "https://")):
            call.error = "unsupported URL scheme"
            raise failed
        digest = hashlib.sha256()
        size = 0
        try:
            async with self._http.stream("GET", url, timeout=_DOWNLOAD_TIMEOUT) as response:
                call.status = response.status_code
                if response.status_code != 200:
                    raise failed
                async with await anyio.open_file(path, "wb") as out:
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > DOWNLOAD_LIMIT:
                            raise DownloadFailed("file_too_large", "File is too large.")
                        digest.update(chunk)
                        await out.write(chunk)
        except httpx.HTTPError as exc:
            call.error = type(exc).__name__
            raise failed from exc
        return digest.hexdigest()


class Storage:
    """POST /storage/auth/token, POST /cdn/files/upload, GET /cdn/files/{id}/{name}."""

    def __init__(self, files: FileStore, gate: Gate, public_url: str | None) -> None:
        self._files = files
        self._gate = gate
        self._public_url = public_url
        self._tokens: dict[str, float] = {}

    def routes(self) -> list[Route]:
        endpoint = self._gate.endpoint
        return [
            Route(
                "/storage/auth/token", endpoint("token", key_auth)(self._token), methods=["POST"]
            ),
            Route(
                "/cdn/files/upload",
                endpoint("upload", self._bearer)(self._upload),
                methods=["POST"],
            ),
            Route(
                "/cdn/files/{file_id}/{name}",
                endpoint("cdn", None)(self._serve),
                methods=["GET", "HEAD"],
            ),
        ]

    def clear(self) -> None:
        self._tokens.clear()

    async def _token(self, request: Request, call: Call) -> Response:
        raw = await request.body()
        call.body = json.loads(raw) if raw.strip() else None
        now = time.time()
        self._tokens = {token: expiry for token, expiry in self._tokens.items() if expiry > now}
        token = secrets.token_urlsafe(24)
        expires = datetime.now(UTC) + TOKEN_TTL
        self._tokens[token] = expires.timestamp()
        return JSONResponse(
            {
                "token": token,
                "token_type": "Bearer",
                "base_url": f"{base_url(request, self._public_url)}/cdn",
                "expires_at": expires.isoformat(),
            }
        )

    def _bearer(self, request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or self._tokens.get(token.strip(), 0) <= time.time():
            return "Missing, unknown or expired storage token"
        return None

    async def _upload(self, request: Request, call: Call) -> Response:
        content_type = request.headers.get("content-type", "application/octet-stream")
        name = safe_name(request.headers.get("x-fal-file-name", ""), content_type)
        file_id = uuid.uuid4().hex
        path = self._files.place(file_id, name)
        size = 0
        async with await anyio.open_file(path, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                # Past the cap the rest is drained, not written, so the client reads a 413
                # instead of a reset connection.
                if size <= UPLOAD_LIMIT:
                    await out.write(chunk)
        call.body = {"size": size, "content_type": content_type, "file_name": name}
        if size > UPLOAD_LIMIT:
            path.unlink(missing_ok=True)
            return detail(413, f"File is larger than {UPLOAD_LIMIT} bytes")
        stored = StoredFile(file_id, name, path, content_type, size)
        self._files.add(stored)
        return JSONResponse(
            {
                "access_url": stored.url(base_url(request, self._public_url)),
                "content_type": content_type,
                "file_name": name,
                "file_size": size,
            }
        )

    async def _serve(self, request: Request, call: Call) -> Response:
        stored = await self._files.fetch(
            request.path_params["file_id"], request.path_params["name"]
        )
        if stored is None:
            return detail(404, "File not found")
        return FileResponse(stored.path, media_type=stored.content_type)
