"""`kadr check`: everything the processes depend on, tried once, one line each, before an
operator finds out from a user. Each check is bounded in time and reports the reason it
failed with the configured secrets masked."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from bot.webhook import used_update_types
from core.config import ConfigError, Settings, load_settings
from core.db import check_schema
from core.fal_client import FalClient
from core.resources import create_bot, create_redis

TIMEOUT = 10.0


@dataclass(frozen=True)
class Outcome:
    name: str
    problem: str | None
    """None when the check passed; otherwise what is wrong, safe to print."""

    def line(self) -> str:
        return f"{'ok  ' if self.problem is None else 'FAIL'} {self.name}: {self.problem or 'ok'}"


async def _worker_configuration(_: Settings) -> None:
    try:
        load_settings("worker")
    except ConfigError as exc:
        raise RuntimeError(f"a worker would not start: {exc}") from None


async def _database(settings: Settings) -> None:
    await check_schema(settings.DATABASE_URL)


async def _redis(settings: Settings) -> None:
    redis = create_redis(settings.REDIS_URL)
    try:
        await redis.ping()
    finally:
        await redis.aclose()


async def _telegram(settings: Settings) -> None:
    async with create_bot(settings) as bot:
        me = await bot.get_me()
        info = await bot.get_webhook_info()
    if info.url != settings.telegram_webhook_url:
        raise RuntimeError(
            f"@{me.username}'s webhook is {info.url or 'not set'}, not "
            f"{settings.telegram_webhook_url}: run `kadr set-webhook`"
        )
    missing = sorted(set(used_update_types()) - set(info.allowed_updates or []))
    if info.allowed_updates and missing:
        raise RuntimeError(
            f"the webhook does not ask for {', '.join(missing)}: run `kadr set-webhook`"
        )
    if info.last_error_message:
        raise RuntimeError(f"Telegram's last delivery failed: {info.last_error_message}")


async def _fal(settings: Settings) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        fal = FalClient(
            http,
            key=settings.FAL_KEY,
            queue_url=settings.FAL_QUEUE_URL,
            rest_url=settings.FAL_REST_URL,
        )
        await fal.verify_key()


CHECKS: dict[str, Callable[[Settings], Awaitable[None]]] = {
    "worker configuration": _worker_configuration,
    "database at the code's migration": _database,
    "redis": _redis,
    "telegram token and webhook": _telegram,
    "fal key": _fal,
}


def _masked(text: str, settings: Settings) -> str:
    for secret in settings.secrets():
        text = text.replace(secret, "***")
    return text


async def _run(
    name: str, check: Callable[[Settings], Awaitable[None]], settings: Settings
) -> Outcome:
    try:
        await asyncio.wait_for(check(settings), TIMEOUT)
    except TimeoutError:
        return Outcome(name, f"no answer within {TIMEOUT:g} s")
    except Exception as exc:
        return Outcome(name, _masked(str(exc) or type(exc).__name__, settings))
    return Outcome(name, None)


async def run_checks(settings: Settings) -> list[Outcome]:
    return list(await asyncio.gather(*(_run(n, c, settings) for n, c in CHECKS.items())))
