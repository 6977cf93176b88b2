"""The worker process: arq's Worker (with claims that die with their worker, and made to
survive a Redis restart while it claims a job) for each queue, and the update consumer, side
by side on one event loop."""

from __future__ import annotations

import asyncio
import logging
import signal

from prometheus_client import start_http_server

from bot.dispatcher import build_dispatcher
from core.infra.config import Config
from core.infra.patches.arq_claims import KadrWorker
from core.jobs.queue import JobQueues
from core.resources import Resources
from core.telegram.inbox import Inbox
from workers.queues import queues, worker_options
from workers.services import Services
from workers.updates import UpdateConsumer

log = logging.getLogger(__name__)

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
    job_queues = [queue for queue in served if queue != UPDATES]
    workers = [
        KadrWorker(**worker_options(config, queue, services), handle_signals=False)
        for queue in job_queues
    ]
    consumer = (
        UpdateConsumer(
            Inbox(resources.redis, dedup_ttl=config.UPDATE_DEDUP_TTL),
            build_dispatcher(resources),
            resources.outbox,
            owner=config.WORKER_NAME,
            # The tasks that share this process's loop with the handlers.
            job_queues=JobQueues.of(resources.redis, job_queues),
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
