"""What Telegram accepted for a job's delivery, kept where a re-run of the task looks before
it sends: a delivery whose database move failed after Telegram took the result (PostgreSQL
restarting, the worker killed) only finishes the move when it runs again, and the user gets
the result once. Kept in Redis, which the send itself needed a moment before (the limiter).

The one window left is between Telegram's answer and this record: one Redis write, and the
last second of writes a Redis crash may lose (append-only, fsync every second);
docs/security.md says so.
"""

from __future__ import annotations

import functools
import json
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.infra.retry import waiting_out

log = logging.getLogger(__name__)

PREFIX = "kadr:receipt:"
#: Longer than any delivery is tried (its window is minutes; an outage may stretch it).
TTL_SECONDS = 7 * 24 * 3600
#: Seconds a receipt is tried for when Redis fails, on top of the client's own retries.
KEEP_PATIENCE = 60.0


class Receipts:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def of(self, job_id: str) -> list[str] | None:
        """The file ids Telegram gave for the job's result, if it was sent."""
        stored = await self.redis.get(PREFIX + job_id)
        return None if stored is None else list(json.loads(stored))

    async def keep(self, job_id: str, file_ids: list[str]) -> bool:
        """Record a sent result, trying hard: a receipt lost here is a result sent twice.
        False when Redis stayed away; the caller's database move is then the only record."""
        try:
            await waiting_out(
                functools.partial(
                    self.redis.set, PREFIX + job_id, json.dumps(file_ids), ex=TTL_SECONDS
                ),
                passing=lambda exc: isinstance(exc, RedisError),
                patience=KEEP_PATIENCE,
                what=f"keeping the receipt of job {job_id}",
            )
        except RedisError as exc:
            log.error("job %s was sent but its receipt was not kept: %r", job_id, exc)
            return False
        return True
