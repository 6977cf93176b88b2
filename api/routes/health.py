"""Liveness and readiness probes for the orchestrator and nginx."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ResourcesDep
from core.infra.db import ping

router = APIRouter()

CHECK_TIMEOUT = 1.5


@router.get("/livez")
async def livez() -> dict[str, str]:
    """Alive means the event loop answers; dependencies are readiness's business."""
    return {"status": "ok"}


async def _check(probe: Awaitable[object]) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await probe
    except TimeoutError:
        return f"timeout after {CHECK_TIMEOUT}s"
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


@router.get("/readyz")
async def readyz(resources: ResourcesDep) -> JSONResponse:
    redis, database = await asyncio.gather(
        _check(resources.redis.ping()), _check(ping(resources.engine))
    )
    checks = {"redis": redis, "database": database}
    ready = all(result == "ok" for result in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )
