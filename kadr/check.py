"""`kadr check`: everything the processes depend on, tried once, one line each, before an
operator finds out from a user. Each check is bounded in time and reports the reason it
failed with the configured secrets masked; one that could not be made at all (fal's public
schemas out of reach) says so and fails nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from bot.webhook import used_update_types
from core.domain.catalog import catalog
from core.domain.margins import check_margins
from core.fal.client import FalClient
from core.infra.config import Config, ConfigError, load_config
from core.infra.db import check_schema
from core.resources import create_bot, create_redis
from kadr.fal_inputs import FalUnreachable, catalog_mismatches

TIMEOUT = 10.0
#: Seconds for one of fal's schemas: a network that drops packets is told in time.
SCHEMA_TIMEOUT = 5.0


class Skipped(Exception):
    """The check could not be made; the message says why."""


@dataclass(frozen=True)
class Outcome:
    name: str
    problem: str | None
    """None when the check passed; otherwise what is wrong, safe to print."""
    skipped: str | None = None
    """Why the check could not be made, when it could not."""

    def line(self) -> str:
        if self.skipped is not None:
            return f"skip {self.name}: {self.skipped}"
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


async def _fal_inputs(config: Config) -> None:
    async with httpx.AsyncClient(timeout=SCHEMA_TIMEOUT) as http:
        try:
            problems = await catalog_mismatches(http, config.FAL_OPENAPI_URL, catalog())
        except FalUnreachable as exc:
            raise Skipped(
                f"could not reach fal's published schemas ({exc}): the catalog was not "
                "compared with them"
            ) from None
    if problems:
        raise RuntimeError("; ".join(problems))


async def _prices(config: Config) -> None:
    check_margins(catalog(), config.MIN_MARGIN_PERCENT)


CHECKS: dict[str, Callable[[Config], Awaitable[None]]] = {
    "worker configuration": _worker_configuration,
    "database at the code's migration": _database,
    "redis": _redis,
    "telegram token and webhook": _telegram,
    "fal key": _fal,
    "catalog inputs in fal's schemas": _fal_inputs,
    "catalog prices cover fal's costs": _prices,
}


def _masked(text: str, config: Config) -> str:
    for secret in config.secrets():
        text = text.replace(secret, "***")
    return text


async def run_check(name: str, config: Config) -> Outcome:
    """One of CHECKS, bounded in time, its failure told in words safe to print."""
    try:
        await asyncio.wait_for(CHECKS[name](config), TIMEOUT)
    except TimeoutError:
        return Outcome(name, f"no answer within {TIMEOUT:g} s")
    except Skipped as exc:
        return Outcome(name, None, skipped=_masked(str(exc), config))
    except Exception as exc:
        return Outcome(name, _masked(str(exc) or type(exc).__name__, config))
    return Outcome(name, None)


async def run_checks(config: Config) -> list[Outcome]:
    return list(await asyncio.gather(*(run_check(name, config) for name in CHECKS)))
