"""The worker process: arq's Worker (with claims that die with their worker, and made to
survive a Redis restart while it claims a job) for each queue, and the update consumer, side
by side on one event loop."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from arq.constants import in_progress_key_prefix
from arq.worker import Worker
from prometheus_client import start_http_server
from redis.exceptions import RedisError

from bot.dispatcher import build_dispatcher
from core.infra.config import Config
from core.resources import Resources
from core.telegram.inbox import Inbox
from workers.queues import queues, worker_options
from workers.services import Services
from workers.updates import UpdateConsumer

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
    be run again (DESIGN.md), and a delivery looks for its receipt before it sends.

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


#: What a `kadr worker` can serve besides the catalog's queues: the Telegram update inbox.
UPDATES = "updates"


def roles() -> list[str]:
    return [UPDATES, *queues()]


async def serve(config: Config, served: list[str]) -> None:
    """One process, one set of clients, every role asked for: the update consumer and one
    arq worker per queue. SIGTERM stops taking work, lets what runs finish (arq's
    `job_completion_wait`, the consumer's grace), then closes the clients."""
    resources = Resources.open(config, redis_retrying=True)
    services = Services.build(resources)
    workers = [
        KadrWorker(**worker_options(config, queue, services), handle_signals=False)
        for queue in served
        if queue != UPDATES
    ]
    consumer = (
        UpdateConsumer(
            Inbox(resources.redis, dedup_ttl=config.UPDATE_DEDUP_TTL),
            build_dispatcher(resources),
            resources.bot,
            resources.limiter,
            owner=config.WORKER_NAME,
        )
        if UPDATES in served
        else None
    )
    if config.WORKER_METRICS_PORT:
        start_http_server(config.WORKER_METRICS_PORT, addr="0.0.0.0")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    runs = [asyncio.create_task(worker.async_run()) for worker in workers]
    if consumer is not None:
        runs.append(asyncio.create_task(consumer.run()))
    log.info("kadr worker serving %s", ", ".join(served))
    try:
        await asyncio.wait(
            [asyncio.create_task(stopping.wait()), *runs], return_when="FIRST_COMPLETED"
        )
        if consumer is not None:
            consumer.stop()
        for worker in workers:
            worker.handle_sig_wait_for_completion(signal.SIGTERM)
        await asyncio.gather(*runs, return_exceptions=True)
    finally:
        for worker in workers:
            await worker.close()
        await resources.close()
