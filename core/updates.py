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


class UpdateIntake:
    """Owns the background tasks that run handlers, so shutdown can wait for them."""

    def __init__(self, dispatcher: Dispatcher, bot: Bot, redis: Redis, *, dedup_ttl: int) -> None:
        self._dispatcher = dispatcher
        self._bot = bot
        self._redis = redis
        self._dedup_ttl = dedup_ttl
        self._tasks: set[asyncio.Task[None]] = set()

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
        task = asyncio.create_task(self._handle(update, kind))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return Outcome.ACCEPTED

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
        try:
            await self._dispatcher.feed_update(self._bot, update)
        except Exception:
            TELEGRAM_UPDATES.labels(kind, "failed").inc()
            log.exception("handler failed for update %s (%s)", update.update_id, kind)
        else:
            TELEGRAM_UPDATES.labels(kind, "handled").inc()

    async def drain(self, grace: float = 10.0) -> None:
        """Let handlers in flight finish before the process closes its clients."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
