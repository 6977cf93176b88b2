"""Reading request bodies with a size cap, so a huge or endless body cannot fill memory."""

from __future__ import annotations

import re

from fastapi import HTTPException, Request, status

#: ASCII digits only (`str.isdigit` takes `²`, which `int` refuses), and few enough of them
#: that `int` cannot refuse the length either; a longer one is over any cap anyway.
_LENGTH_RE = re.compile(r"[0-9]{1,18}")


async def read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length") or ""
    if declared and not _LENGTH_RE.fullmatch(declared):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "malformed Content-Length")
    if declared and int(declared) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
