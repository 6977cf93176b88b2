"""The Bot API over HTTP: ``/bot<token>/<method>`` and ``/file/bot<token>/<path>``."""

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Any

import aiohttp
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from .errors import ApiError, too_many_requests
from .files import CHUNK, StoredFile
from .methods import Call, Method, lookup
from .params import Upload, read_params
from .state import Fault, Recorded, Sandbox, World

logger = logging.getLogger(__name__)
TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]{10,}")

ParamsLoader = Callable[[], Awaitable[tuple[dict[str, Any], dict[str, Upload]]]]


def encode(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def json_response(body: bytes, status: int = HTTPStatus.OK) -> Response:
    return Response(body, status, media_type="application/json")


async def answer(sandbox: Sandbox, token: str, name: str, load: ParamsLoader) -> tuple[int, bytes]:
    """Runs one Bot API call and records it, whatever the outcome."""
    started = time.time()
    method = lookup(name)
    params: dict[str, Any] = {}
    uploads: dict[str, Upload] = {}
    status: int = HTTPStatus.OK
    try:
        if not TOKEN.fullmatch(token):
            raise ApiError(HTTPStatus.UNAUTHORIZED, "Unauthorized")
        if method is None:
            raise ApiError(HTTPStatus.NOT_FOUND, "Not Found")
        params, uploads = await load()
        result = await _run(method, Call(sandbox, token, params, uploads))
        body = encode({"ok": True, "result": result})
    except ApiError as error:
        status, body = error.status, encode(error.payload())
    except Exception:
        # A stand-in bug must not look like a network failure to the bot under test.
        logger.exception("%s failed inside the stand-in", name)
        status = HTTPStatus.INTERNAL_SERVER_ERROR
        body = encode(ApiError(status, "Internal Server Error").payload())
    sandbox.world.requests.append(
        Recorded(
            seq=sandbox.next_seq(),
            t=started,
            method=method.name if method else name,
            token=token,
            params=params,
            files={field: upload.describe() for field, upload in uploads.items()},
            status=status,
            response=body,
        )
    )
    return status, body


async def _run(method: Method, call: Call) -> Any:
    """Injected faults first (or, after handling, on the way back), then flood control, then
    the method itself."""
    chat_id = call.params.get("chat_id")
    world = call.world
    fault = world.take_fault(method.name, method.is_message, chat_id)
    if fault is not None and not fault.after_handling:
        await _apply(fault, world)
    flood_wait = world.flood_wait_until - time.monotonic()
    if flood_wait > 0 and method.is_message:
        raise too_many_requests(max(1, math.ceil(flood_wait)))
    limiter = world.limiter
    if limiter is not None and method.is_message:
        retry_after = limiter.acquire(chat_id)
        if retry_after is not None:
            raise too_many_requests(retry_after)
    result = await method.handler(call)
    if fault is not None and fault.after_handling:
        await _apply(fault, world)
    return result


async def _apply(fault: Fault, world: World) -> None:
    """Wait the fault's delay, then answer its error if it has one; a 429 starts the bot's
    flood wait, as Telegram's does."""
    if fault.delay > 0:
        await asyncio.sleep(fault.delay)
    error = fault.error()
    if error is not None:
        if error.retry_after is not None and error.status == HTTPStatus.TOO_MANY_REQUESTS:
            world.flood_wait_until = time.monotonic() + error.retry_after
        raise error


async def bot_endpoint(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    token = request.path_params["token"]
    status, body = await answer(
        sandbox, token, request.path_params["method"], lambda: read_params(request)
    )
    return json_response(body, status)


async def download_endpoint(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    if not TOKEN.fullmatch(request.path_params["token"]):
        return json_response(
            encode(ApiError(HTTPStatus.UNAUTHORIZED, "Unauthorized").payload()), 401
        )
    stored = sandbox.files.by_path(request.path_params["file_path"])
    if stored is None:
        return json_response(encode(ApiError(HTTPStatus.NOT_FOUND, "Not Found").payload()), 404)
    return await file_response(sandbox, stored)


async def file_response(sandbox: Sandbox, stored: StoredFile) -> Response:
    """Streams stored bytes, or relays the URL a file was trusted by when fetching is off."""
    data = await sandbox.files.content(stored)
    if data is not None:
        headers = {"content-length": str(len(data))}
        return StreamingResponse(_chunks(data), media_type=stored.mime_type, headers=headers)
    try:
        upstream = await sandbox.http.get(stored.url or "")
    except (aiohttp.ClientError, TimeoutError):
        return json_response(encode(ApiError(HTTPStatus.BAD_GATEWAY, "Bad Gateway").payload()), 502)
    return StreamingResponse(
        _relay(upstream), status_code=upstream.status, media_type=upstream.content_type
    )


async def _relay(upstream: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.content.iter_chunked(CHUNK):
            yield chunk
    finally:
        upstream.release()


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(view), CHUNK):
        yield bytes(view[start : start + CHUNK])
