"""The arq queues (images, video, …) and the options of the arq Worker that serves each one
(what arq calls worker settings): every queue of a process shares the process's clients
(`Services`) through `ctx`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from typing import Any

from arq import cron, func
from arq.connections import ArqRedis, RedisSettings

from core.domain.catalog import catalog
from core.infra.config import Config
from core.infra.metrics import QUEUE_DEPTH, QUEUE_DUE, QUEUE_OLDEST_AGE
from core.jobs.queue import (
    ALBUM,
    BROADCAST,
    BROADCAST_QUEUE,
    CANCEL,
    DELIVER,
    PROGRESS,
    SUBMIT,
    queue_name,
    queue_of,
)
from core.resources import REDIS_RETRY, REDIS_RETRY_ON
from workers import tasks
from workers.services import Services

log = logging.getLogger(__name__)

#: The queue that also runs the sweeper; one sweep per tick across all workers (cron unique).
SWEEPING_QUEUE = "images"
QUEUE_METRICS_EVERY = 5.0


def redis_settings(url: str) -> RedisSettings:
    return dataclasses.replace(
        RedisSettings.from_dsn(url),
        retry=REDIS_RETRY,
        retry_on_error=REDIS_RETRY_ON,
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


def worker_options(config: Config, queue: str, services: Services) -> dict[str, Any]:
    """Everything arq's Worker needs for `queue`, built from kadr's configuration."""
    name = queue_name(queue)

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["watcher"] = asyncio.create_task(_watch_queue(ctx["redis"], name))
        log.info("worker for %s ready", name)

    async def shutdown(ctx: dict[str, Any]) -> None:
        ctx["watcher"].cancel()

    sweeping = queue == SWEEPING_QUEUE
    every = config.SWEEP_INTERVAL
    return {
        "functions": [
            func(tasks.submit, name=SUBMIT, timeout=120, max_tries=tasks.TRIES),
            func(tasks.deliver, name=DELIVER, timeout=180, max_tries=tasks.TRIES),
            func(tasks.cancel, name=CANCEL, timeout=60, max_tries=tasks.TRIES),
            func(tasks.progress, name=PROGRESS, timeout=30, max_tries=3),
            *(
                [func(tasks.album, name=ALBUM, timeout=30, max_tries=tasks.TRIES)]
                if name == queue_of("edit")
                else []
            ),
            *(
                [
                    func(
                        tasks.broadcast,
                        name=BROADCAST,
                        timeout=600,
                        max_tries=tasks.TRIES,
                    )
                ]
                if queue == BROADCAST_QUEUE
                else []
            ),
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
        "ctx": {"services": services},
        "on_startup": startup,
        "on_shutdown": shutdown,
        "redis_settings": redis_settings(config.REDIS_URL),
        "queue_name": name,
        "health_check_key": f"{name}:health-check:{config.WORKER_NAME}",
        "health_check_interval": 30,
        "keep_result": 0,
        "max_jobs": 100,
        "poll_delay": 0.02,
        "job_completion_wait": 20,
    }


def queues() -> list[str]:
    """The arq queues the catalog's modes use."""
    return sorted({mode.queue for mode in catalog().modes.values()})
