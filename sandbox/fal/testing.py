"""Helpers for tests that talk to the stand-in over real HTTP inside their own event loop."""

import asyncio
import json
import socket
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

_PATIENCE = 10.0


@asynccontextmanager
async def serve(app: ASGIApp, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Yields the base URL; the socket is bound before uvicorn starts, so no port is raced."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


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
