"""Per-address limits on the webhooks, set far above what Telegram and fal really send, so only
a flood from one address is refused, before its body is read or verified.

Counted in the process's memory with the `limits` library's asyncio storage: a limit must
never wait on Redis or fail when Redis is down (the webhook answers 503 for that itself), and it
costs microseconds. Not slowapi: it counts with `limits`' threaded storage, which starts a
thread every 10 ms under load to expire counters, a cost the api paid per fal webhook
(docs/benchmark-history.md). Health and metrics are never limited.

A limit per person (`SharedLimit`, the Mini App's actions) is counted in Redis instead: behind
nginx one person reaches every api process, and each would allow them the whole limit again.
"""

from __future__ import annotations

from typing import Any, cast

from fastapi import FastAPI, HTTPException, Request, status
from limits import parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter
from redis.asyncio import Redis
from starlette.types import Scope

#: fal calls back once per request (a few retries at most); 300 a second from one address is
#: far past any real load of one account.
FAL_WEBHOOKS_PER_ADDRESS = "300/second"
TOO_MANY = "too many requests from this address"


class AddressLimit:
    """At most `limit` (in `limits`' notation, "300/second") requests per client address."""

    def __init__(self, limit: str) -> None:
        self._limit = parse(limit)
        self._limiter = FixedWindowRateLimiter(MemoryStorage())

    async def allows(self, scope: Scope) -> bool:
        """Counts this request; False once its address is over the limit."""
        return await self._limiter.hit(self._limit, client_address(scope))


class SharedLimit:
    """At most `limit` per key across every api process: counted in Redis under `prefix`,
    through the process's own Redis client (its pool, timeouts and shutdown). Redis being
    down raises RedisError, for the route to answer 503."""

    def __init__(self, limit: str, redis: Redis, prefix: str) -> None:
        self._limit = parse(limit)
        # `limits` hands its options on to redis-py's client; its annotation names scalars only.
        pool = cast(Any, redis.connection_pool)
        storage = RedisStorage(
            "async+redis://", implementation="redispy", key_prefix=prefix, connection_pool=pool
        )
        self._limiter = FixedWindowRateLimiter(storage)

    async def allows(self, key: str) -> bool:
        """Counts a request of `key`; False once it is over."""
        return await self._limiter.hit(self._limit, key)


def client_address(scope: Scope) -> str:
    """The client's address (nginx's X-Forwarded-For, once uvicorn's proxy headers applied)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def install(app: FastAPI) -> None:
    """The fal webhook's limit, one per app (each test's app counts afresh)."""
    app.state.fal_webhook_limit = AddressLimit(FAL_WEBHOOKS_PER_ADDRESS)


async def limit_fal_webhooks(request: Request) -> None:
    """A route dependency: 429 past the limit, before the route reads anything."""
    if not await request.app.state.fal_webhook_limit.allows(request.scope):
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, TOO_MANY)
