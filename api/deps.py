"""Typed dependencies: routes ask for what they use; the lifespan put it on app.state.

All are `async def`: FastAPI runs a plain `def` dependency in its thread pool, a thread hop
per dependency per request for what is an attribute read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from core.fal.webhook import FalWebhookVerifier
from core.infra.config import Config
from core.resources import Resources


async def get_resources(request: Request) -> Resources:
    return request.app.state.resources  # type: ignore[no-any-return]


async def get_config(request: Request) -> Config:
    return request.app.state.resources.config  # type: ignore[no-any-return]


async def get_verifier(request: Request) -> FalWebhookVerifier:
    return request.app.state.verifier  # type: ignore[no-any-return]


ResourcesDep = Annotated[Resources, Depends(get_resources)]
ConfigDep = Annotated[Config, Depends(get_config)]
VerifierDep = Annotated[FalWebhookVerifier, Depends(get_verifier)]
