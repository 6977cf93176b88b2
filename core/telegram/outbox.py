"""Every Bot API call of a process passes here: messages are paced under Telegram's limits
(the shared limiter, across all processes), a 429 pauses every sender, and a handler that
runs again for the same update gets its earlier answers back instead of sending twice.

This is what makes the inbox the handlers' outbox: a handler's reply that cannot leave yet
waits here while its update stays in the durable inbox, in order per chat (the partition is
held); if the process dies, the update is handled again and the replies already sent are
replayed from Redis, not sent again. A worker task's send that cannot leave soon goes back
to its queue instead (`RetryLater`), and progress edits go only when a moment is free now.
Answers to buttons and payments (answerCallbackQuery, …) are not messages: never paced.
Results go first: a handler's reply lets results that are waiting leave before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType
from redis.asyncio import Redis

from core.infra.metrics import (
    OUTBOX_OLDEST_WAIT,
    OUTBOX_WAITING,
    TELEGRAM_CALLS,
    TELEGRAM_THROTTLED,
)
from core.infra.retry import RetryLater
from core.telegram.inbox import sent_key
from core.telegram.limits import TelegramLimiter

log = logging.getLogger(__name__)

#: Methods that put something in a chat: Telegram's limits count them (edits included).
PACED_PREFIXES = ("send", "edit", "copy", "forward")
#: Answers whose failure must not fail the handler: a button's toast that comes too late
#: ("query is too old", after a backlog) matters less than what the button does.
COURTESIES = frozenset({"answerCallbackQuery"})
#: A handler's send waits for its moment however far away it is (its update waits too).
UNBOUNDED = 24 * 3600.0
#: How long a replayable answer is kept if its update is never acked (a dead letter).
SENT_TTL = 24 * 3600


class SendSkipped(Exception):
    """An optional send found no free moment and was not made."""


@dataclass
class _Handling:
    update_id: int
    first_run: bool
    calls: int = 0


@dataclass(frozen=True)
class _Policy:
    max_wait: float = UNBOUNDED
    optional: bool = False
    #: Results waiting to go leave first (core/telegram/limits.py): handlers' replies yield.
    yielding: bool = True


_handling: contextvars.ContextVar[_Handling | None] = contextvars.ContextVar(
    "kadr_handling", default=None
)
WAITING = _Policy()
_policy: contextvars.ContextVar[_Policy] = contextvars.ContextVar("kadr_policy", default=WAITING)


@contextlib.contextmanager
def handling(update_id: int, *, first_run: bool = False) -> Iterator[None]:
    """Calls made inside belong to this update: numbered, and replayed if it runs again.
    `first_run`: nobody ran this update before, so there is nothing to replay (a Redis read
    per call saved)."""
    token = _handling.set(_Handling(update_id, first_run))
    try:
        yield
    finally:
        _handling.reset(token)


def _first_run() -> bool:
    state = _handling.get()
    return state is not None and state.first_run


@contextlib.contextmanager
def _policy_of(policy: _Policy) -> Iterator[None]:
    token = _policy.set(policy)
    try:
        yield
    finally:
        _policy.reset(token)


def deferring(max_wait: float) -> contextlib.AbstractContextManager[None]:
    """Sends inside wait at most `max_wait` for their moment, then raise RetryLater; they do
    not yield (a worker task's send is a result or about one)."""
    return _policy_of(_Policy(max_wait=max_wait, yielding=False))


def behind_results() -> contextlib.AbstractContextManager[None]:
    """Sends inside let waiting results go first, whatever else their policy says."""
    return _policy_of(dataclasses.replace(_policy.get(), yielding=True))


def optional() -> contextlib.AbstractContextManager[None]:
    """Sends inside go only if a moment is free now, else raise SendSkipped."""
    return _policy_of(_Policy(max_wait=0.0, optional=True))


def _outcome(exc: Exception) -> str:
    return "forbidden" if isinstance(exc, TelegramForbiddenError) else "error"


@dataclass
class SendPacer(BaseRequestMiddleware):
    redis: Redis
    limiter: TelegramLimiter
    _waiting: dict[int, float] = field(default_factory=dict)
    _tickets: Iterator[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        OUTBOX_OLDEST_WAIT.set_function(self.oldest_wait)

    def oldest_wait(self) -> float:
        return time.monotonic() - min(self._waiting.values()) if self._waiting else 0.0

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Any:
        # aiogram's chain hands back the call's result, not the Response its types name.
        name = method.__api_method__
        answer = Response[method.__returning__]  # type: ignore[name-defined]
        slot = self._replay_slot(name)
        if slot is not None and not _first_run():
            stored = await self.redis.hget(*slot)  # type: ignore[misc]
            if stored is not None:
                TELEGRAM_CALLS.labels(name, "replayed").inc()
                return answer.model_validate_json(stored, context={"bot": bot}).result
        result = await self._send(make_request, bot, method, name)
        if slot is not None:
            record = answer(ok=True, result=result).model_dump_json(exclude_none=True)
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(*slot, record)
                pipe.expire(slot[0], SENT_TTL)
                await pipe.execute()
        return result

    @staticmethod
    def _replay_slot(name: str) -> tuple[str, str] | None:
        state = _handling.get()
        if state is None or name.startswith("get"):
            return None
        state.calls += 1
        return sent_key(state.update_id), f"{state.calls}:{name}"

    async def _send(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
        name: str,
    ) -> Any:
        chat = getattr(method, "chat_id", None)
        paced = name.startswith(PACED_PREFIXES) and isinstance(chat, int)
        policy = _policy.get()
        while True:
            if paced:
                await self._moment(chat, policy)  # type: ignore[arg-type]
            try:
                response = await make_request(bot, method)
            except TelegramRetryAfter as exc:
                TELEGRAM_CALLS.labels(name, "429").inc()
                TELEGRAM_THROTTLED.labels("telegram").inc()
                await self.limiter.pause(exc.retry_after)
                if policy.max_wait < UNBOUNDED:
                    raise
                if not paced:  # the limiter's pause holds back paced calls only
                    await asyncio.sleep(exc.retry_after)
                continue
            except TelegramBadRequest as exc:
                TELEGRAM_CALLS.labels(name, "bad_request").inc()
                if name in COURTESIES:
                    log.info("%s refused (%s); the handler goes on", name, exc.message)
                    return True
                raise
            except Exception as exc:
                TELEGRAM_CALLS.labels(name, _outcome(exc)).inc()
                raise
            TELEGRAM_CALLS.labels(name, "ok").inc()
            return response

    async def _moment(self, chat: int, policy: _Policy) -> None:
        if policy.optional:
            if not await self.limiter.try_acquire(chat):
                raise SendSkipped(f"no free send moment for chat {chat}")
            return
        ticket = next(self._tickets)
        self._waiting[ticket] = time.monotonic()
        OUTBOX_WAITING.inc()
        try:
            await self.limiter.acquire(chat, max_wait=policy.max_wait, yielding=policy.yielding)
        except RetryLater:
            TELEGRAM_THROTTLED.labels("limiter").inc()
            raise
        finally:
            OUTBOX_WAITING.dec()
            del self._waiting[ticket]
