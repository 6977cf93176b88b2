"""Helpers for tests that talk to the stand-in over real HTTP inside their own event loop."""

import asyncio
import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_PATIENCE = 10.0


@dataclass(frozen=True, slots=True)
class Delivery:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """A stand-in webhook endpoint: keeps every POST and answers scripted statuses, then 200."""

    def __init__(self, statuses: Iterable[int] = ()) -> None:
        self.deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
        self.statuses = deque(statuses)
        self.app = Starlette(routes=[Route("/hook", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> Response:
        await self.deliveries.put(Delivery(dict(request.headers), await request.body()))
        return Response(status_code=self.statuses.popleft() if self.statuses else 200)

    async def next(self) -> Delivery:
        """Bounded wait: a webhook that never comes fails the test instead of hanging it."""
        async with asyncio.timeout(_PATIENCE):
            return await self.deliveries.get()
