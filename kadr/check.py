"""`kadr check`: everything the processes depend on, tried once, one line each, before an
operator finds out from a user. Each check is bounded in time and reports the reason it
failed with the configured secrets masked."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from bot.webhook import used_update_types
from core.config import Config, ConfigError, load_config
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


async def _worker_configuration(_: Config) -> None:
    try:
        load_config("worker")
    except ConfigError as exc:
        raise RuntimeError(f"a worker would not start: {exc}") from None


async def _database(config: Config) -> None:
    await check_schema(config.DATABASE_URL)


async def _redis(config: Config) -> None:
    redis = create_redis(config.REDIS_URL)
    try:
        await redis.ping()
    finally:
        await redis.aclose()


async def _telegram(config: Config) -> None:
    async with create_bot(config) as bot:
        me = await bot.get_me()
        info = await bot.get_webhook_info()
    if info.url != config.telegram_webhook_url:
        raise RuntimeError(
            f"@{me.username}'s webhook is {info.url or 'not set'}, not "
            f"{config.telegram_webhook_url}: run `kadr set-webhook`"
        )
    missing = sorted(set(used_update_types()) - set(info.allowed_updates or []))
    if info.allowed_updates and missing:
        raise RuntimeError(
            f"the webhook does not ask for {', '.join(missing)}: run `kadr set-webhook`"
        )
    if info.last_error_message:
        raise RuntimeError(f"Telegram's last delivery failed: {info.last_error_message}")


async def _fal(config: Config) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        fal = FalClient(
            http,
            key=config.FAL_KEY,
            queue_url=config.FAL_QUEUE_URL,
            rest_url=config.FAL_REST_URL,
        )
        await fal.verify_key()


CHECKS: dict[str, Callable[[Config], Awaitable[None]]] = {
    "worker configuration": _worker_configuration,
    "database at the code's migration": _database,
    "redis": _redis,
    "telegram token and webhook": _telegram,
    "fal key": _fal,
}


def _masked(text: str, config: Config) -> str:
    for secret in config.secrets():
        text = text.replace(secret, "***")
    return text


async def _run(name: str, check: Callable[[Config], Awaitable[None]], config: Config) -> Outcome:
    try:
        await asyncio.wait_for(check(config), TIMEOUT)
    except TimeoutError:
        return Outcome(name, f"no answer within {TIMEOUT:g} s")
    except Exception as exc:
        return Outcome(name, _masked(str(exc) or type(exc).__name__, config))
    return Outcome(name, None)


async def run_checks(config: Config) -> list[Outcome]:
    return list(await asyncio.gather(*(_run(n, c, config) for n, c in CHECKS.items())))
