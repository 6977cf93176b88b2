"""Wires the stand-in together: one server plays fal's queue, REST, CDN and JWKS hosts."""

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from starlette.applications import Starlette

from sandbox.fal.calls import CallLog, Faults, Gate
from sandbox.fal.config import Settings
from sandbox.fal.control import Control
from sandbox.fal.models import Workshop
from sandbox.fal.queue import FalQueue
from sandbox.fal.storage import Downloader, FileStore, Storage
from sandbox.fal.webhooks import Signer, WebhookSender

# Room for every in-flight webhook (see webhooks._IN_FLIGHT) plus input downloads.
_LIMITS = httpx.Limits(max_connections=32, max_keepalive_connections=32)


def create_app(*, latency: float = 0.2, public_url: str | None = None) -> Starlette:
    """`public_url` is the base put into the URLs handed out; by default each request's own."""
    root = Path(tempfile.mkdtemp(prefix="kadr-fal-sandbox-"))
    http = httpx.AsyncClient(limits=_LIMITS, follow_redirects=True)
    settings = Settings(latency)
    calls, faults = CallLog(), Faults()
    gate = Gate(calls, faults)
    signer = Signer()
    files = FileStore(root / "files")
    storage = Storage(files, gate, public_url)
    webhooks = WebhookSender(http, signer, calls, settings)
    workshop = Workshop(files, Downloader(http, calls, root / "inputs"))
    queue = FalQueue(settings, gate, workshop, webhooks, public_url)
    control = Control(settings, calls, faults, queue, storage, files, signer)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            queue.reset()
            await http.aclose()
            await asyncio.to_thread(shutil.rmtree, root, True)

    # The submit route takes any path, so it goes last.
    routes = [*signer.routes(), *storage.routes(), control.mount(), *queue.routes()]
    return Starlette(routes=routes, lifespan=lifespan)
