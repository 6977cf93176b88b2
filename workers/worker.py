"""arq's Worker, made to survive a Redis restart while it claims a job."""

from __future__ import annotations

import logging

from arq.worker import Worker
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class KadrWorker(Worker):
    """Claiming a job watches its in-progress key; redis-py does not retry a command inside a
    WATCH, and arq lets that error end its main loop. So a Redis restart stopped every worker
    busy claiming (in the benchmark, both image workers at once), and their running jobs
    waited out arq's in-progress timeout. Here the claim is given up instead: the job is still
    in the queue, and the next poll claims it.
    """

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        try:
            await super().start_jobs(job_ids)
        except RedisError as exc:
            # The claim that failed had taken a slot and counted a job.
            self.job_counter -= 1
            self.sem.release()
            log.warning("Redis failed while claiming a job (%s); the next poll tries again", exc)
