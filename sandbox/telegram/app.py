"""Assembles the stand-in: Bot API routes, the control API, one shared HTTP client."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from . import control
from .bot_api import bot_endpoint, download_endpoint
from .state import Sandbox

FETCH_TIMEOUT = 10.0
WEBHOOK_POOL_WAIT = 60.0


def create_app(*, fetch_urls: bool = True, enforce_limits: bool = False) -> Starlette:
    sandbox = Sandbox(fetch_urls=fetch_urls, enforce_limits=enforce_limits)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Benchmarks push many deliveries at once: let them queue for the pool, not time out.
        timeout = httpx.Timeout(FETCH_TIMEOUT, pool=WEBHOOK_POOL_WAIT)
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
        async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
            sandbox.http = client
            try:
                yield
            finally:
                sandbox.http = None

    app = Starlette(
        routes=[
            Route("/bot{token}/{method}", bot_endpoint, methods=["GET", "POST"]),
            Route("/file/bot{token}/{file_path:path}", download_endpoint, methods=["GET"]),
            Mount("/_sandbox", routes=control.routes),
        ],
        exception_handlers={control.ControlError: control.control_error_handler},
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox
    return app
