"""Assembles the stand-in: Bot API routes, the control API, the chat page, one HTTP client."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from . import control, page
from .bot_api import bot_endpoint, download_endpoint
from .state import Sandbox

FETCH_TIMEOUT = 10.0


def create_app(*, fetch_urls: bool = True, enforce_limits: bool = False) -> Starlette:
    sandbox = Sandbox(fetch_urls=fetch_urls, enforce_limits=enforce_limits)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # aiohttp, not httpx: fetching URLs through httpx capped sendPhoto at ~150 requests/s,
        # aiohttp (already here for aiogram) does ~3x that. No connection cap: benchmarks push
        # many deliveries at once and a pool limit would only add queueing.
        session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT),
            connector=aiohttp.TCPConnector(limit=0),
        )
        async with session:
            sandbox.http = session
            try:
                yield
            finally:
                sandbox.http = None

    app = Starlette(
        routes=[
            Route("/bot{token}/{method}", bot_endpoint, methods=["GET", "POST"]),
            Route("/file/bot{token}/{file_path:path}", download_endpoint, methods=["GET"]),
            Mount("/_sandbox", routes=[*control.routes, *page.sandbox_routes]),
            *page.routes,
        ],
        exception_handlers={control.ControlError: control.control_error_handler},
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox
    return app
