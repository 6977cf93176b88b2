"""arq worker settings: one worker per queue (images, video), each sharing its clients
across all its tasks through `ctx`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from typing import Any

from arq import cron, func
from arq.connections import ArqRedis, RedisSettings
from prometheus_client import start_http_server
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from core.catalog import catalog
from core.config import Settings
from core.metrics import QUEUE_DEPTH, QUEUE_DUE, QUEUE_OLDEST_AGE
from core.queue import CANCEL, DELIVER, SUBMIT, queue_name
from core.resources import Resources
from core.services import Services
from workers import tasks

log = logging.getLogger(__name__)

#: The queue that also runs the sweeper; one sweep per tick across all workers (cron unique).
SWEEPING_QUEUE = "images"
QUEUE_METRICS_EVERY = 5.0
#: How a worker rides out a Redis restart: every command is retried with backoff capped at
#: 1 s, about 25 s in all. Without it arq's poll loop dies on the first refused connection
#: and the worker exits; in the benchmark a 1 s Redis restart took the video worker down.
REDIS_RETRY = Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=30)


def redis_settings(url: str) -> RedisSettings:
    return dataclasses.replace(
        RedisSettings.from_dsn(url),
        retry=REDIS_RETRY,
        # OSError: a refused connect surfaces as the builtin ConnectionRefusedError.
        retry_on_error=[redis_errors.ConnectionError, redis_errors.TimeoutError, OSError],
    )


async def _watch_queue(redis: ArqRedis, name: str) -> None:
    """Queue depth, due jobs and the oldest due job's age, for alerting on a stuck pool."""
    while True:
        with contextlib.suppress(Exception):
            now_ms = time.time() * 1000
            depth = await redis.zcard(name)
            due = await redis.zcount(name, "-inf", now_ms)
            oldest = await redis.zrange(name, 0, 0, withscores=True)
            QUEUE_DEPTH.labels(name).set(depth)
            QUEUE_DUE.labels(name).set(due)
            age = (now_ms - oldest[0][1]) / 1000 if oldest and oldest[0][1] <= now_ms else 0
            QUEUE_OLDEST_AGE.labels(name).set(age)
        await asyncio.sleep(QUEUE_METRICS_EVERY)


def worker_settings(settings: Settings, queue: str) -> dict[str, Any]:
    """Everything arq's Worker needs for `queue`, built from kadr's settings."""
    name = queue_name(queue)

    async def startup(ctx: dict[str, Any]) -> None:
        resources = Resources.open(settings, redis=ctx["redis"])
        ctx["services"] = Services.build(resources)
        ctx["watcher"] = asyncio.create_task(_watch_queue(ctx["redis"], name))
        if settings.WORKER_METRICS_PORT:
            start_http_server(settings.WORKER_METRICS_PORT, addr="0.0.0.0")
        log.info("worker for %s ready", name)

    async def shutdown(ctx: dict[str, Any]) -> None:
        ctx["watcher"].cancel()
        await ctx["services"].resources.close()

    sweeping = queue == SWEEPING_QUEUE
    every = settings.SWEEP_INTERVAL
    return {
        "functions": [
            func(tasks.submit, name=SUBMIT, timeout=120, max_tries=tasks.SUBMIT_TRIES),
            func(tasks.deliver, name=DELIVER, timeout=180, max_tries=tasks.DELIVER_TRIES),
            func(tasks.cancel, name=CANCEL, timeout=30, max_tries=1),
        ],
        "cron_jobs": [
            cron(
                tasks.sweep,
                second=set(range(0, 60, every)),
                unique=True,
                timeout=55,
                run_at_startup=True,
            )
        ]
        if sweeping
        else [],
        "on_startup": startup,
        "on_shutdown": shutdown,
        "redis_settings": redis_settings(settings.REDIS_URL),
        "queue_name": name,
        "health_check_key": f"{name}:health-check:{settings.WORKER_NAME}",
        "health_check_interval": 30,
        "keep_result": 0,
        "max_jobs": 100,
        "poll_delay": 0.02,
        "job_completion_wait": 20,
    }


def queues() -> list[str]:
    return sorted({mode.queue for mode in catalog().modes.values()})
