"""The shared clients of one process: created once at start-up, closed once at shutdown.

api and worker both hold exactly one of each; nothing creates a client per request or per job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from arq.connections import ArqRedis
from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.infra.config import Config
from core.infra.db import create_engine, session_factory
from core.infra.patches.aiogram_responses import ResponseKeepingSession
from core.telegram.limits import SendLimits, TelegramLimiter
from core.telegram.outbox import Outbox, SendPacer

#: How a worker rides out a Redis restart: every command is retried with backoff capped at
#: 1 s, about 25 s in all. Without it arq's poll loop dies on the first refused connection
#: and the worker exits, so a one-second Redis restart would take workers down.
#: The api does not wait: its webhook answers 503 at once and Telegram delivers again.
REDIS_RETRY = Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=30)
#: OSError: a refused connect surfaces as the builtin ConnectionRefusedError.
REDIS_RETRY_ON = [redis_errors.ConnectionError, redis_errors.TimeoutError, OSError]


def create_redis(url: str, *, max_connections: int = 50, retrying: bool = False) -> ArqRedis:
    """A pool that waits for a free connection instead of failing, with bounded socket waits;
    ArqRedis is a plain redis client that can also enqueue, so one pool serves both."""
    retry: dict[str, Any] = (
        {"retry": REDIS_RETRY, "retry_on_error": REDIS_RETRY_ON} if retrying else {}
    )
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=5,
        socket_timeout=5,
        socket_connect_timeout=2,
        health_check_interval=30,
        **retry,
    )
    return ArqRedis(connection_pool=pool)


def create_http() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        # A kept connection is dropped before a server's usual 5-s idle timeout (uvicorn's):
        # reused at the moment the server closes it, a submit fails ambiguously and its job
        # waits for its deadline (fal has no idempotency key to send it again).
        limits=httpx.Limits(
            max_connections=200, max_keepalive_connections=50, keepalive_expiry=4.0
        ),
        timeout=httpx.Timeout(connect=5, read=30, write=30, pool=10),
        follow_redirects=False,
    )


def create_bot(config: Config) -> Bot:
    session = ResponseKeepingSession(
        api=TelegramAPIServer.from_base(config.TELEGRAM_API_URL), limit=100
    )
    return Bot(
        config.TELEGRAM_BOT_TOKEN,
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )


@dataclass
class Resources:
    config: Config
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: ArqRedis
    http: httpx.AsyncClient
    #: The process's one Bot, handed out per send policy (core/telegram/outbox.py).
    outbox: Outbox
    limiter: TelegramLimiter

    @classmethod
    def open(cls, config: Config, *, redis_retrying: bool = False) -> Resources:
        """`redis_retrying`: Redis commands ride out a restart (workers) instead of failing
        at once (the api)."""
        engine = create_engine(config.DATABASE_URL, config.DATABASE_POOL_SIZE)
        shared_redis = create_redis(config.REDIS_URL, retrying=redis_retrying)
        limiter = TelegramLimiter(
            shared_redis, SendLimits(total_per_second=config.TELEGRAM_SENDS_PER_SECOND)
        )
        bot = create_bot(config)
        bot.session.middleware(SendPacer(shared_redis, limiter))
        return cls(
            config=config,
            engine=engine,
            sessions=session_factory(engine),
            redis=shared_redis,
            http=create_http(),
            outbox=Outbox(bot),
            limiter=limiter,
        )

    async def close(self) -> None:
        await self.outbox.close()
        await self.http.aclose()
        await self.redis.aclose()
        await self.engine.dispose()
