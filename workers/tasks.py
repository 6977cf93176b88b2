"""The arq tasks: thin shells that hand each run to its use-case (the modules beside this one)
and translate "try later" into arq's Retry. A wrapper counts outcomes and durations, which
arq's hooks cannot see."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from arq import Retry
from arq.typing import WorkerCoroutine

from core.logs import log_fields
from core.metrics import TASK_SECONDS, TASKS
from core.queue import keep_broadcast_alive
from core.retry import RetryLater
from core.telegram_limits import MAX_INLINE_WAIT
from core.telegram_pacing import deferring
from workers.broadcast import run_broadcast
from workers.cancellation import cancel_at_fal
from workers.delivery import deliver_job
from workers.services import Services
from workers.submission import submit_job
from workers.sweeper import sweep as sweep_jobs

SUBMIT_TRIES = 8
DELIVER_TRIES = 25
#: A broadcast to many users is deferred many times (each time a send's moment is far).
BROADCAST_TRIES = 10_000

Task = Callable[..., Awaitable[Any]]


def measured(task: Task) -> WorkerCoroutine:
    """Also: a send that cannot leave within a short wait gives its slot back to the queue
    (arq's Retry) instead of holding it."""

    @functools.wraps(task)
    async def run(ctx: dict[str, Any], *args: Any) -> Any:
        started = time.perf_counter()
        outcome = "ok"
        try:
            with deferring(MAX_INLINE_WAIT), log_fields(**({"job_id": args[0]} if args else {})):
                return await task(ctx, *args)
        except RetryLater as later:
            outcome = "retry"
            raise Retry(defer=later.delay) from None
        except Exception:
            outcome = "error"
            raise
        finally:
            TASKS.labels(task.__name__, outcome).inc()
            TASK_SECONDS.labels(task.__name__).observe(time.perf_counter() - started)

    return run


@measured
async def submit(ctx: dict[str, Any], job_id: str) -> None:
    services: Services = ctx["services"]
    attempt = ctx["job_try"]
    await submit_job(services, job_id, attempt=attempt, last_attempt=attempt >= SUBMIT_TRIES)


@measured
async def deliver(ctx: dict[str, Any], job_id: str) -> None:
    await deliver_job(ctx["services"], job_id, attempt=ctx["job_try"])


@measured
async def cancel(ctx: dict[str, Any], job_id: str) -> None:
    await cancel_at_fal(ctx["services"], job_id)


@measured
async def sweep(ctx: dict[str, Any]) -> None:
    await sweep_jobs(ctx["services"])


@measured
async def broadcast(ctx: dict[str, Any], broadcast_id: int) -> None:
    resources = ctx["services"].resources
    alive = asyncio.create_task(keep_broadcast_alive(resources.redis, broadcast_id))
    try:
        await run_broadcast(resources.sessions, resources.bot, broadcast_id, attempt=ctx["job_try"])
    finally:
        alive.cancel()
