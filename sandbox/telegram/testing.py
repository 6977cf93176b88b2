"""Running the stand-in (or any small ASGI app) in-process on a free port, for tests that talk
to it over real HTTP the way the bot and workers do."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from aiogram.client.telegram import TelegramAPIServer

from sandbox.asgi import serve

from .app import create_app


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
