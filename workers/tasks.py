"""The arq tasks: thin shells that hand each run to its use-case (the modules beside this one)
and translate "try later" into arq's Retry. A wrapper waits out outages and counts outcomes
and durations, which arq's hooks cannot see."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from arq import Retry
from arq.typing import WorkerCoroutine

from core.infra.logs import log_fields
from core.infra.metrics import TASK_SECONDS, TASKS
from core.infra.retry import RetryLater, backoff, is_outage, waiting_out
from workers.albums import settle_album
from workers.broadcast import run_broadcast
from workers.cancellation import cancel_at_fal
from workers.delivery import deliver_job
from workers.progress import progress_tick
from workers.services import Services
from workers.submission import submit_job
from workers.sweeper import sweep as sweep_jobs

#: arq's count of tries never ends a job: its window does (a submit's deadline, a delivery's
#: window, a broadcast's recipients), and an outage may take many tries to wait out. Past
#: arq's count a job would fail silently, left for the sweeper.
TRIES = 10_000
#: Seconds a task waits out an outage in place, trying again with backoff; then it goes back
#: to its queue (arq's Retry) and waits there. Inside every task's timeout.
OUTAGE_PATIENCE = 20.0

Task = Callable[..., Awaitable[Any]]


def measured(task: Task) -> WorkerCoroutine:
    """Also: what must be tried later (a send that cannot leave within a short wait, see
    core/telegram/outbox.py) gives its slot back to the queue (arq's Retry) instead of
    holding it."""

    @functools.wraps(task)
    async def run(ctx: dict[str, Any], *args: Any) -> Any:
        started = time.perf_counter()
        outcome = "ok"
        try:
            with log_fields(**({"job_id": args[0]} if args else {})):
                return await retry_through_outages(task, ctx, *args)
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


async def retry_through_outages(task: Task, ctx: dict[str, Any], *args: Any) -> Any:
    """Run the task; while Redis, the database, Telegram or fal is away, run it again after a
    pause that grows, for `OUTAGE_PATIENCE`, then hand it back to its queue. Every task may
    run again from the start (its moves are conditional, a delivery keeps its receipt), so an
    outage never ends one as failed, for the sweeper to find a minute later."""
    try:
        return await waiting_out(
            functools.partial(task, ctx, *args),
            passing=is_outage,
            patience=OUTAGE_PATIENCE,
            what=f"{task.__name__}: outage",
        )
    except Exception as exc:
        if not is_outage(exc):
            raise
        raise RetryLater(backoff(1, base=1.0), f"outage: {type(exc).__name__}") from None


@measured
async def submit(ctx: dict[str, Any], job_id: str) -> None:
    services: Services = ctx["services"]
    await submit_job(services, job_id, attempt=ctx["job_try"])


@measured
async def deliver(ctx: dict[str, Any], job_id: str) -> None:
    await deliver_job(ctx["services"], job_id, attempt=ctx["job_try"])


@measured
async def progress(ctx: dict[str, Any], job_id: str, tick: int) -> None:
    await progress_tick(ctx["services"], job_id, tick)


@measured
async def cancel(ctx: dict[str, Any], job_id: str) -> None:
    await cancel_at_fal(ctx["services"], job_id, attempt=ctx["job_try"])


@measured
async def sweep(ctx: dict[str, Any]) -> None:
    await sweep_jobs(ctx["services"])


@measured
async def broadcast(ctx: dict[str, Any], broadcast_id: int) -> None:
    resources = ctx["services"].resources
    await run_broadcast(resources.sessions, resources.outbox, broadcast_id, attempt=ctx["job_try"])


@measured
async def album(ctx: dict[str, Any], chat_id: int, media_group_id: str) -> None:
    await settle_album(ctx["services"], chat_id, media_group_id)
