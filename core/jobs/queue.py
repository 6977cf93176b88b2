"""Work queues: names, and enqueueing with the job ids that make duplicates impossible.

Each mode names its queue in the catalog (images and video are apart, so a slow video upload
never delays a picture); a job's submit and deliver both run on its mode's queue.
arq's `_job_id` drops an enqueue while the same id is queued or running, so `submit:<job>` and
`deliver:<job>` can be enqueued from anywhere (handler, webhook, sweeper) without double work.
Results are not kept, so an id is free again once its run is over.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from arq.connections import ArqRedis
from redis.asyncio import Redis

from core.domain.catalog import catalog
from core.telegram.albums import QUIET

SUBMIT = "submit"
DELIVER = "deliver"
CANCEL = "cancel"
PROGRESS = "progress"
BROADCAST = "broadcast"
ALBUM = "album"
#: The queue broadcasts run on: the pictures' workers, which also sweep.
BROADCAST_QUEUE = "images"
QUEUE_PREFIX = "kadr:"


def queue_name(queue: str) -> str:
    return f"{QUEUE_PREFIX}{queue}"


def queue_of(mode: str) -> str:
    return queue_name(catalog().modes[mode].queue)  # type: ignore[index]


@dataclass(frozen=True)
class JobQueues:
    """Some of the arq queues the jobs' tasks (submit, deliver, …) run on, as one backlog."""

    redis: Redis
    names: tuple[str, ...]

    @classmethod
    def of(cls, redis: Redis, queues: Iterable[str]) -> JobQueues:
        """`queues`: as the catalog and `kadr worker --queue` name them ("images")."""
        return cls(redis, tuple(queue_name(queue) for queue in queues))

    async def ready(self) -> int:
        """Tasks due by now, the running ones included (arq keeps a task in its queue until
        it ends)."""
        now = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in self.names:
                pipe.zcount(name, "-inf", now)
            return sum(await pipe.execute())


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


async def enqueue_progress(
    redis: ArqRedis, job_id: str, mode: str, *, tick: int, delay: float
) -> None:
    """The next refresh of a job's status message, `delay` seconds from now. Each tick has an
    id of its own: a tick queues the next while its own id is still taken."""
    await redis.enqueue_job(
        PROGRESS,
        job_id,
        tick,
        _job_id=f"{PROGRESS}:{job_id}:{tick}",
        _queue_name=queue_of(mode),
        _defer_by=delay,
    )


async def enqueue_broadcast(redis: ArqRedis, broadcast_id: int) -> None:
    await redis.enqueue_job(
        BROADCAST,
        broadcast_id,
        _job_id=f"{BROADCAST}:{broadcast_id}",
        _queue_name=queue_name(BROADCAST_QUEUE),
    )


async def enqueue_album(redis: ArqRedis, chat_id: int, media_group_id: str) -> None:
    """The album's settle task, once per album (core/telegram/albums.py): an album's other
    photos enqueue it while it waits, which arq drops."""
    await redis.enqueue_job(
        ALBUM,
        chat_id,
        media_group_id,
        _job_id=f"{ALBUM}:{chat_id}:{media_group_id}",
        _queue_name=queue_of("edit"),
        _defer_by=QUIET,
    )
