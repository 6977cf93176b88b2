"""Running the stand-in (or any small ASGI app) in-process on a free port, for tests that talk
to it over real HTTP the way the bot and workers do."""

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from aiogram.client.telegram import TelegramAPIServer
from starlette.types import ASGIApp

from .app import create_app


@asynccontextmanager
async def serve(app: ASGIApp, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Yields the base URL while uvicorn serves ``app`` on the current event loop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.005)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@dataclass
class StandIn:
    url: str
    control: httpx.AsyncClient
    """Bound to ``/_sandbox``."""

    @property
    def api(self) -> TelegramAPIServer:
        """What ``AiohttpSession(api=...)`` needs to point aiogram here."""
        return TelegramAPIServer.from_base(self.url)

    async def requests(self, **filters: Any) -> list[dict[str, Any]]:
        response = await self.control.get("/requests", params=filters)
        response.raise_for_status()
        return response.json()


@asynccontextmanager
async def telegram_stand_in(
    *, fetch_urls: bool = True, enforce_limits: bool = False
) -> AsyncIterator[StandIn]:
    app = create_app(fetch_urls=fetch_urls, enforce_limits=enforce_limits)
    async with serve(app) as url, httpx.AsyncClient(base_url=f"{url}/_sandbox") as control:
        yield StandIn(url, control)
