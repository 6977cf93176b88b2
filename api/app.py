"""The FastAPI application: routes plus a lifespan that owns the process's shared clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator

from api.routes import fal, health, telegram
from core.config import Settings
from core.fal_signature import FalWebhookVerifier
from core.inbox import Inbox
from core.resources import Resources

UNMEASURED = ["/metrics", "/livez", "/readyz"]


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = Resources.open(settings)
        try:
            app.state.resources = resources
            app.state.inbox = Inbox(resources.redis, dedup_ttl=settings.UPDATE_DEDUP_TTL)
            app.state.verifier = FalWebhookVerifier(resources.http, settings.FAL_JWKS_URL)
            yield
        finally:
            await resources.close()

    app = FastAPI(title="kadr", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.include_router(telegram.router)
    app.include_router(fal.router)
    app.include_router(health.router)
    Instrumentator(excluded_handlers=UNMEASURED).instrument(app).expose(
        app, include_in_schema=False
    )
    return app
