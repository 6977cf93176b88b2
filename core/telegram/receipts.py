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
from typing import NamedTuple

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.infra.retry import waiting_out
from core.telegram.file_ids import FileKind

log = logging.getLogger(__name__)

PREFIX = "kadr:receipt:"
#: Longer than any delivery is tried (its window is minutes; an outage may stretch it).
TTL_SECONDS = 7 * 24 * 3600
#: Seconds a receipt is tried for when Redis fails, on top of the client's own retries.
KEEP_PATIENCE = 60.0


class Sent(NamedTuple):
    """What Telegram gave for a sent result: its file ids (resendable for free), the kind
    each was sent as (Telegram refuses a file id used as another kind), and the ids of the
    messages that show it (a reply to one of them continues the job's chain)."""

    file_ids: list[str]
    kinds: list[FileKind]
    message_ids: list[int]


class Receipts:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def of(self, job_id: str) -> Sent | None:
        """What Telegram gave for the job's result, if it was sent (a receipt kept before
        message ids were is a bare list of file ids; one kept before kinds were has none)."""
        stored = await self.redis.get(PREFIX + job_id)
        if stored is None:
            return None
        kept = json.loads(stored)
        if isinstance(kept, list):
            return Sent(kept, [], [])
        return Sent(kept["file_ids"], kept.get("kinds", []), kept["message_ids"])

    async def keep(self, job_id: str, sent: Sent) -> bool:
        """Record a sent result, trying hard: a receipt lost here is a result sent twice.
        False when Redis stayed away; the caller's database move is then the only record."""
        try:
            await waiting_out(
                functools.partial(
                    self.redis.set, PREFIX + job_id, json.dumps(sent._asdict()), ex=TTL_SECONDS
                ),
                passing=lambda exc: isinstance(exc, RedisError),
                patience=KEEP_PATIENCE,
                what=f"keeping the receipt of job {job_id}",
            )
        except RedisError as exc:
            log.error("job %s was sent but its receipt was not kept: %r", job_id, exc)
            return False
        return True
