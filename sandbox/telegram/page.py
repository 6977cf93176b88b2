"""The chat page: a person talks to the bot in a browser, through the stand-in.

The page is static files; it acts only through the control API (``/_sandbox/send_message``,
``/send_photo``, ``/send_document``, ``/press_button``, ``/pay``), so what reaches the bot is
the same webhook POST a test sends. It reads the chat from one server-sent event stream per
tab: a snapshot on (re)connect, then each change as it happens — no polling.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from .feed import RESYNC, Change
from .methods.bot import commands_key
from .methods.inline import menu_button
from .state import Sandbox
from .views import message_view

STATIC = Path(__file__).with_name("static")
KEEPALIVE = 15.0  # seconds between comments that let either side notice a dead stream
RECONNECT_MS = 1000
# The page renders every text as DOM text nodes; this forbids anything else from running or
# loading should that ever slip.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "media-src 'self'; connect-src 'self'; form-action 'none'; base-uri 'none'; "
        # Mini Apps open in a frame, from wherever the bot serves them.
        "frame-src http: https:; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)


def _sandbox(request: Request) -> Sandbox:
    return request.app.state.sandbox


def _chat_id(request: Request) -> int:
    return int(request.path_params["chat_id"])


async def events(request: Request) -> Response:
    return StreamingResponse(
        _stream(_sandbox(request), _chat_id(request)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(sandbox: Sandbox, chat_id: int) -> AsyncIterator[str]:
    """Watching starts before the snapshot is taken, with no await between: nothing is missed."""
    with sandbox.feed.watch(chat_id) as changes:
        yield f"retry: {RECONNECT_MS}\n" + _snapshot(sandbox, chat_id)
        while True:
            try:
                change = await asyncio.wait_for(changes.get(), KEEPALIVE)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            yield _event(sandbox, chat_id, change)


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _snapshot(sandbox: Sandbox, chat_id: int) -> str:
    chat = sandbox.world.chats.get(chat_id)
    messages = chat.messages.values() if chat else ()
    return _sse("snapshot", [message_view(message, "") for message in messages])


def _event(sandbox: Sandbox, chat_id: int, change: Change) -> str:
    """A message is shown as it is now, not as it was when it changed; gone means skipped."""
    if change.event == RESYNC:
        return _snapshot(sandbox, chat_id)
    if change.event != "message":
        return _sse(change.event, change.data)
    chat = sandbox.world.chats.get(chat_id)
    message = chat.messages.get(change.data["message_id"]) if chat else None
    return _sse("message", message_view(message, "")) if message else ""


async def commands(request: Request) -> Response:
    """The bot's command menu as a private chat sees it: the narrowest scope the bot set, in
    the person's language if the bot set one for it (Telegram's order)."""
    sandbox = _sandbox(request)
    chat_id = _chat_id(request)
    language = request.query_params.get("language_code")
    scopes = ({"type": "chat", "chat_id": chat_id}, {"type": "all_private_chats"}, None)
    for scope in scopes:
        for code in (language, None):
            found = sandbox.commands.get(commands_key(scope, code))
            if found:
                return JSONResponse(found)
    return JSONResponse([])


async def chat_menu_button(request: Request) -> Response:
    """The button left of the input field: a Web App, or the command list."""
    return JSONResponse(menu_button(_sandbox(request).menu_buttons, _chat_id(request)))


routes: list[BaseRoute] = [
    Route("/", index, methods=["GET"]),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
]
sandbox_routes: list[BaseRoute] = [
    Route("/chats/{chat_id:int}/events", events, methods=["GET"]),
    Route("/chats/{chat_id:int}/commands", commands, methods=["GET"]),
    Route("/chats/{chat_id:int}/menu_button", chat_menu_button, methods=["GET"]),
]
