"""The FastAPI application: routes plus a lifespan that owns the process's shared clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator, metrics

from api import rate_limits
from api.routes import fal, health, mini_app
from api.telegram_webhook import TelegramWebhook, WebhookState
from core.fal.webhook import FalWebhookVerifier
from core.infra.config import Config
from core.resources import Resources
from core.telegram.inbox import Inbox

UNMEASURED = ["/metrics", "/livez", "/readyz"]
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


def create_app(config: Config) -> TelegramWebhook:
    """The webhook in front of the FastAPI application that serves everything else."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = Resources.open(config)
        try:
            app.state.resources = resources
            app.state.telegram_webhook = WebhookState(
                secret=config.TELEGRAM_WEBHOOK_SECRET.encode(),
                inbox=Inbox(resources.redis, dedup_ttl=config.UPDATE_DEDUP_TTL),
            )
            app.state.verifier = FalWebhookVerifier(resources.http, config.FAL_JWKS_URL)
            app.state.mini_app_actions = mini_app.actions_limit(resources.redis)
            yield
        finally:
            await resources.close()

    app = FastAPI(title="kadr", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.include_router(fal.router)
    rate_limits.install(app)
    app.include_router(health.router)
    mini_app.install(app)
    # Requests and latency per route only: the default set also sizes every request and
    # response and keeps a second, 20-bucket latency histogram, a fifth of the webhook's cost.
    instrumentator = Instrumentator(excluded_handlers=UNMEASURED)
    instrumentator.add(metrics.requests(), metrics.latency(buckets=LATENCY_BUCKETS))
    instrumentator.instrument(app).expose(app, include_in_schema=False)
    return TelegramWebhook(app)
