"""Work queues: names, and enqueueing with the job ids that make duplicates impossible.

Each mode names its queue in the catalog (images and video are apart, so a slow video upload
never delays a picture); a job's submit and deliver both run on its mode's queue.
arq's `_job_id` drops an enqueue while the same id is queued or running, so `submit:<job>` and
`deliver:<job>` can be enqueued from anywhere (handler, webhook, sweeper) without double work.
Results are not kept, so an id is free again once its run is over.
"""

from __future__ import annotations

import asyncio
import logging

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from redis.exceptions import RedisError

from core.catalog import catalog

SUBMIT = "submit"
DELIVER = "deliver"
CANCEL = "cancel"
BROADCAST = "broadcast"
#: The queue broadcasts run on: the pictures' workers, which also sweep.
BROADCAST_QUEUE = "images"
QUEUE_PREFIX = "kadr:"
#: A running broadcast refreshes a key this short-lived (`keep_broadcast_alive`).
BROADCAST_ALIVE_SECONDS = 10

log = logging.getLogger(__name__)


def queue_name(queue: str) -> str:
    return f"{QUEUE_PREFIX}{queue}"


def queue_of(mode: str) -> str:
    return queue_name(catalog().modes[mode].queue)  # type: ignore[index]


async def enqueue_submit(redis: ArqRedis, job_id: str, mode: str) -> None:
    await redis.enqueue_job(
        SUBMIT, job_id, _job_id=f"{SUBMIT}:{job_id}", _queue_name=queue_of(mode)
    )


async def enqueue_deliver(redis: ArqRedis, job_id: str, mode: str, *, delay: float = 0) -> None:
    """`delay`: seconds before a worker may take it (its send moment is that far off)."""
    await redis.enqueue_job(
        DELIVER,
        job_id,
        _job_id=f"{DELIVER}:{job_id}",
        _queue_name=queue_of(mode),
        _defer_by=delay or None,
    )


async def enqueue_broadcast(redis: ArqRedis, broadcast_id: int) -> None:
    await redis.enqueue_job(
        BROADCAST,
        broadcast_id,
        _job_id=f"{BROADCAST}:{broadcast_id}",
        _queue_name=queue_name(BROADCAST_QUEUE),
    )


def _broadcast_alive_key(broadcast_id: int) -> str:
    return f"{QUEUE_PREFIX}broadcast-alive:{broadcast_id}"


async def keep_broadcast_alive(redis: ArqRedis, broadcast_id: int) -> None:
    """Run beside a broadcast's run (cancelled when it ends): says it is alive, often."""
    while True:
        try:
            await redis.set(_broadcast_alive_key(broadcast_id), b"1", ex=BROADCAST_ALIVE_SECONDS)
        except RedisError as exc:
            log.warning("broadcast %s: could not say it is alive (%s)", broadcast_id, exc)
        await asyncio.sleep(BROADCAST_ALIVE_SECONDS / 5)


async def release_dead_broadcast(redis: ArqRedis, broadcast_id: int) -> bool:
    """A run whose worker died (SIGKILL, a lost machine) leaves arq's in-progress key behind
    for the longest task timeout plus 10 s (over ten minutes), and the broadcast waits that
    long. A run that is not saying it is alive has its key dropped, so the queued job is
    taken up at the next poll. Should a live run be taken for dead (a stalled loop), two
    runs at once are harmless: each recipient is claimed in the database
    (`core/broadcasts.py`). True when a key was dropped."""
    if await redis.exists(_broadcast_alive_key(broadcast_id)):
        return False
    job_id = f"{BROADCAST}:{broadcast_id}"
    return bool(await redis.delete(f"{in_progress_key_prefix}{job_id}"))
