"""Telegram update intake: validate, drop duplicates, and hand the update to the dispatcher
in the background so the webhook answers in milliseconds.

Telegram keeps one update per chat in flight and redelivers on any non-2xx, so a handler's
failure must never turn into an HTTP error: it is logged and counted instead.
"""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.types import Update
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.db import POOL_SIZE
from core.metrics import TELEGRAM_UPDATES

log = logging.getLogger(__name__)


class InvalidUpdate(ValueError):
    """The body is not a Telegram Update; the reason is safe to show to the caller."""


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"


def parse_update(body: Any, bot: Bot) -> Update:
    if not isinstance(body, dict):
        raise InvalidUpdate("body must be a JSON object")
    if not isinstance(body.get("update_id"), int):
        raise InvalidUpdate("update_id must be an integer")
    try:
        return Update.model_validate(body, context={"bot": bot})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidUpdate(f"not a Telegram Update: {where}: {first['msg']}") from None


def update_type(update: Update) -> str:
    try:
        return update.event_type
    except Exception:  # aiogram raises for update kinds it does not know
        return "unknown"


def chat_of(update: Update, kind: str) -> int | None:
    """The chat an update belongs to, for ordering; None for kinds without one."""
    event = update.event if kind != "unknown" else None
    chat = getattr(event, "chat", None)
    if chat is not None:
        return int(chat.id)
    user = getattr(event, "from_user", None)
    return int(user.id) if user is not None else None


#: Pauses before a handler that failed because Redis did not answer runs again. A Redis
#: restart takes a second or two, and the update has been answered already, so giving up
#: loses it: in the benchmark a 1.1 s restart during a burst failed 138 of 1,000 prompts.
#: Handlers read Redis (FSM state, the per-user rate limit) before their side effects, so
#: running one again does not repeat them.
REDIS_RETRY_PAUSES = (0.5, 1.0, 2.0, 4.0, 8.0)
#: Handlers running at once: one per database connection (a handler holds one only while it
#: queries, so fal webhooks still find one). The rest wait here, without a timeout, instead
#: of in the connection pool, which gives up after 30 s: in the benchmark, a 100 prompts/s
#: burst on a busy machine lost 181 of 1,000 prompts that way, after their webhook had been
#: answered.
HANDLERS_AT_ONCE = POOL_SIZE


class UpdateIntake:
    """Owns the background tasks that run handlers, so shutdown can wait for them."""

    def __init__(self, dispatcher: Dispatcher, bot: Bot, redis: Redis, *, dedup_ttl: int) -> None:
        self._dispatcher = dispatcher
        self._bot = bot
        self._redis = redis
        self._dedup_ttl = dedup_ttl
        self._tasks: set[asyncio.Task[None]] = set()
        self._tails: dict[int, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(HANDLERS_AT_ONCE)

    async def accept(self, body: Any) -> Outcome:
        try:
            update = parse_update(body, self._bot)
        except InvalidUpdate:
            TELEGRAM_UPDATES.labels("invalid", "rejected").inc()
            raise
        kind = update_type(update)
        if not await self._first_delivery(update.update_id):
            TELEGRAM_UPDATES.labels(kind, "duplicate").inc()
            return Outcome.DUPLICATE
        self._spawn(update, kind)
        return Outcome.ACCEPTED

    def _spawn(self, update: Update, kind: str) -> None:
        """Run the handler in the background, after the previous update of the same chat.

        Answering at once gives up Telegram's own one-update-per-chat pacing; chaining by chat
        restores the order a user acted in (a photo, then its instruction; two quick taps).
        """
        chat = chat_of(update, kind)
        previous = self._tails.get(chat) if chat is not None else None
        task = asyncio.create_task(self._handle_after(previous, update, kind))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if chat is not None:
            self._tails[chat] = task
            task.add_done_callback(lambda done: self._forget(chat, done))

    def _forget(self, chat: int, task: asyncio.Task[None]) -> None:
        if self._tails.get(chat) is task:
            del self._tails[chat]

    async def _handle_after(
        self, previous: asyncio.Task[None] | None, update: Update, kind: str
    ) -> None:
        if previous is not None:
            await asyncio.wait({previous})
        await self._handle(update, kind)

    async def _first_delivery(self, update_id: int) -> bool:
        """True unless this update_id was seen before; a Redis outage lets the update through,
        since handling it twice is better than dropping it."""
        key = f"kadr:tg-update:{update_id}"
        try:
            return bool(await self._redis.set(key, 1, nx=True, ex=self._dedup_ttl))
        except RedisError:
            log.warning("update dedup unavailable (Redis); handling update %s anyway", update_id)
            return True

    async def _handle(self, update: Update, kind: str) -> None:
        for pause in (*REDIS_RETRY_PAUSES, None):
            try:
                async with self._slots:
                    await self._dispatcher.feed_update(self._bot, update)
            except RedisError:
                if pause is not None:
                    log.warning(
                        "Redis unavailable for update %s; again in %gs", update.update_id, pause
                    )
                    await asyncio.sleep(pause)
                    continue
                self._failed(update, kind)
            except Exception:
                self._failed(update, kind)
            else:
                TELEGRAM_UPDATES.labels(kind, "handled").inc()
            return

    @staticmethod
    def _failed(update: Update, kind: str) -> None:
        TELEGRAM_UPDATES.labels(kind, "failed").inc()
        log.exception("handler failed for update %s (%s)", update.update_id, kind)

    async def drain(self, grace: float = 10.0) -> None:
        """Let handlers in flight finish before the process closes its clients."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
