"""Moving files without holding them in memory: streamed, size-capped, through a temp file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import httpx

CHUNK = 64 * 1024


class FileTooLarge(Exception):
    """The file is over the cap for where it is going."""


@contextlib.asynccontextmanager
async def downloaded(
    http: httpx.AsyncClient,
    url: str,
    *,
    cap: int,
    deadline: float | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> AsyncIterator[Path]:
    """Stream `url` to a temporary file of at most `cap` bytes; the file is removed on exit.

    `deadline`: seconds for the whole download (httpx's timeouts bound each read, so a server
    that trickles bytes could hold it for ever otherwise); past it TimeoutError is raised.
    Redirects are never followed: where they lead was not checked. `headers`, `extensions`:
    of the request (a `url_guard.Target` pins the checked address this way)."""
    handle, name = tempfile.mkstemp(prefix="kadr-")
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            async with (
                asyncio.timeout(deadline),
                http.stream(
                    "GET", url, headers=headers, extensions=extensions, follow_redirects=False
                ) as response,
            ):
                response.raise_for_status()
                declared = response.headers.get("content-length")
                if declared and int(declared) > cap:
                    raise FileTooLarge(f"{declared} bytes, cap {cap}")
                size = 0
                async for chunk in response.aiter_bytes(CHUNK):
                    size += len(chunk)
                    if size > cap:
                        raise FileTooLarge(f"over {cap} bytes")
                    out.write(chunk)
        yield path
    finally:
        path.unlink(missing_ok=True)  # noqa: ASYNC240 - a local unlink takes microseconds


async def read_chunks(path: Path) -> AsyncGenerator[bytes, None]:
    """Feeds a streamed upload from disk; each read runs in a thread so a slow disk cannot stall
    the event loop. Close it (`contextlib.aclosing`) to release the file at once."""
    source = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(source.read, CHUNK):
            yield chunk
    finally:
        source.close()
