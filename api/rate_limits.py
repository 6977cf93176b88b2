"""Per-address limits on the webhooks (slowapi), set far above what Telegram and fal really
send, so only a flood from one address is refused, before its body is read or verified.

Counted in the process's memory: a limit must never wait on Redis or fail when Redis is down
(the door answers 503 for that itself). The Telegram door is plain ASGI in front of FastAPI
(`api/telegram_door.py`) and counts with the same `limits` library slowapi is built on;
health and metrics are never limited.
"""

from __future__ import annotations

from fastapi import FastAPI
from slowapi import Limiter, _rate_limit_exceeded_handler
from slowapi.errors import RateLimitExceeded
from slowapi.util import get_remote_address

#: fal calls back once per request (a few retries at most); 300 a second from one address is
#: far past any real load of one account.
FAL_WEBHOOKS_PER_ADDRESS = "300/second"

limiter = Limiter(key_func=get_remote_address, storage_uri="memory://")


def install(app: FastAPI) -> None:
    """The limiter and its 429 answer, on `app` (slowapi finds them on app.state)."""
    app.state.limiter = limiter
    app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)  # type: ignore[arg-type]
