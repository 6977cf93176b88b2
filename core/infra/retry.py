"""When to try again: the one exception core raises to ask its task runner for a later try,
and what counts as an outage (a server away for a while) rather than a failure of the work."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiogram.exceptions import TelegramNetworkError, TelegramServerError
from asyncpg.exceptions import ConnectionDoesNotExistError, InternalClientError
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

T = TypeVar("T")

log = logging.getLogger(__name__)

#: Failures of what the work talks to rather than of the work: waited out, never counted
#: against a job. OSError covers a refused or reset connection (ConnectionRefusedError).
OUTAGES: tuple[type[BaseException], ...] = (
    RedisError,
    OperationalError,
    InterfaceError,
    PoolTimeout,
    TelegramNetworkError,
    TelegramServerError,
    OSError,
)
#: asyncpg's own errors about a connection a server crash broke: "connection was closed in
#: the middle of operation", "cannot switch to state …; another operation is in progress".
#: SQLAlchemy passes some of them through unwrapped.
BROKEN_CONNECTION: tuple[type[BaseException], ...] = (
    ConnectionDoesNotExistError,
    InternalClientError,
)
#: PostgreSQL's classes of errors about the server, not the statement: connection (08),
#: insufficient resources such as "too many clients" (53), operator intervention (57).
SERVER_SQLSTATES = ("08", "53", "57")


class RetryLater(Exception):
    """Try this task again in `delay` seconds (the worker turns it into arq's Retry)."""

    def __init__(self, delay: float, reason: str = "") -> None:
        super().__init__(f"retry in {delay:.1f}s: {reason}" if reason else f"retry in {delay:.1f}s")
        self.delay = delay


def backoff(attempt: int, *, base: float = 2.0, cap: float = 120.0) -> float:
    """Exponential backoff with full jitter, so many failed jobs do not retry in step."""
    return random.uniform(base / 2, min(cap, base * 2 ** max(attempt - 1, 0)))


async def waiting_out(
    call: Callable[[], Awaitable[T]],
    *,
    passing: Callable[[BaseException], bool],
    patience: float,
    what: str,
) -> T:
    """`call()`, made again after a growing pause while it fails in a way that `passing`
    says will pass, for `patience` seconds; then that failure is raised."""
    give_up_at = time.monotonic() + patience
    failures = 0
    while True:
        try:
            return await call()
        except Exception as exc:
            if not passing(exc):
                raise
            failures += 1
            pause = backoff(failures, base=0.5, cap=5.0)
            if time.monotonic() + pause > give_up_at:
                raise
            log.warning("%s: %r; again in %.1fs", what, exc, pause)
            await asyncio.sleep(pause)


def is_broken_connection(exc: BaseException) -> bool:
    """An asyncpg error that leaves its connection unusable, raised or wrapped."""
    return any(isinstance(cause, BROKEN_CONNECTION) for cause in _chain(exc))


def is_outage(exc: BaseException) -> bool:
    if isinstance(exc, OUTAGES) or is_broken_connection(exc):
        return True
    if isinstance(exc, DBAPIError):
        state = str(getattr(exc.orig, "sqlstate", "") or getattr(exc.orig, "pgcode", "") or "")
        return exc.connection_invalidated or state.startswith(SERVER_SQLSTATES)
    return False


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, what SQLAlchemy wrapped (`orig`) and what it was raised from."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return seen
