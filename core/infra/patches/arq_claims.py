"""Patch of arq (written for arq 0.28.0, `core/infra/patches/__init__.py` checks it): claims
that die with their worker, and a claim cut short by Redis that gives its slot back.

It relies on arq's Worker internals: `in_progress_timeout_s` (set by `__init__` from the
longest function timeout), `tasks` (the running jobs by id), `pool`, `sem`, `job_counter`,
`main()` and `start_jobs()`. `tests/core/infra/test_patches.py` fails when one of them goes.
Upstream: python-arq/arq#407 asks for exactly this (a short in-progress key renewed by a
heartbeat) and is open; #343 and #306 are the same problem seen by users. Drop this when arq
renews its claims itself.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from arq.constants import in_progress_key_prefix
from arq.worker import Worker
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

#: Seconds a worker's claim on a task (arq's in-progress key) lasts unless renewed: how long
#: a task whose worker died (SIGKILL, the OOM killer, a lost machine) waits for another.
CLAIM_SECONDS = 15
#: A live worker renews the claims of its running tasks this often.
RENEW_EVERY = 3.0


class KadrWorker(Worker):
    """Two changes to how arq claims a task.

    arq's claim lasts as long as the longest task of the queue may run, plus 10 s: with the
    600-s broadcast on the images queue, a killed worker's every submit and delivery waited
    610 s. Here a claim lasts `CLAIM_SECONDS` and the worker renews its running tasks' claims
    while it lives, so a dead worker's tasks are taken up within seconds whatever their kind.
    A task whose worker stalls past its claim may run twice at once: every task is built to
    be run again (docs/architecture.md), and a delivery looks for its receipt before it sends.

    Claiming a job watches its in-progress key; redis-py does not retry a command inside a
    WATCH, and arq lets that error end its main loop. So a Redis restart stopped every worker
    busy claiming, and their running jobs waited out the claim. Here the claim is given up
    instead: the job is still in the queue, and the next poll claims it.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.in_progress_timeout_s = CLAIM_SECONDS

    async def main(self) -> None:
        renewing = asyncio.create_task(self._renew_claims())
        try:
            await super().main()
        finally:
            renewing.cancel()

    async def _renew_claims(self) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY)
            running = [job_id for job_id, task in self.tasks.items() if not task.done()]
            if not running:
                continue
            try:
                async with self.pool.pipeline(transaction=False) as pipe:
                    for job_id in running:
                        pipe.pexpire(in_progress_key_prefix + job_id, CLAIM_SECONDS * 1000)
                    await pipe.execute()
            except RedisError as exc:
                log.warning("could not renew %d claims (%s); next time", len(running), exc)

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        try:
            await super().start_jobs(job_ids)
        except RedisError as exc:
            # The claim that failed had taken a slot and counted a job.
            self.job_counter -= 1
            self.sem.release()
            log.warning("Redis failed while claiming a job (%s); the next poll tries again", exc)
