"""Where a job stands and when its result should come, from live figures: the jobs ahead of it
in kadr's queue, fal's `queue_position` from the submit answer, the results waiting to be
sent, the recent median fal time of its model and the current pace of results.

Jobs ahead of one need a send each before its own, so the result comes when the later of two
things is done: fal makes it (the model's median, less what it already spent at fal), and
the sends ahead of it go out at the pace results are leaving now. Jobs that fal is already
running for others are not counted: nothing tells how many there are without asking fal,
and at a peak, when they matter, the status message is skipped anyway (`bot/launch.py`).

The figures live in Redis: the last `DURATIONS_KEPT` fal times per model, written when fal's
webhook completes a job, and results sent per second for the last `RATE_WINDOW` seconds,
written by each delivery.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from datetime import datetime

from arq.connections import ArqRedis

from core.domain.models import utcnow
from core.jobs.queue import SUBMIT, queue_of
from core.telegram.limits import Backlog, TelegramLimiter

#: fal times kept per model: enough for a stable median, few enough to follow a change.
DURATIONS_KEPT = 50
#: Seconds over which the pace of results is measured.
RATE_WINDOW = 10
DURATIONS_PREFIX = "kadr:fal-times:"
SENT_PREFIX = "kadr:results-sent:"
POSITION_PREFIX = "kadr:fal-position:"
#: How long fal's position of a job is kept (past any job's deadline).
POSITION_TTL = 3600
#: A status message that would wait longer than this for its send moment is not sent: its
#: handler holds the chat's updates meanwhile, and the user is better told at once.
STATUS_MAX_WAIT = 2.0
#: ... nor one that would arrive later than this share of the time until the result.
STATUS_SHARE = 0.5


@dataclass(frozen=True)
class Figures:
    """What is known now about the line a job is in."""

    in_queue: int
    """Jobs ahead of it in kadr's queue (not yet at fal)."""
    at_fal: int
    """fal's `queue_position` from the submit answer (0: running, or not submitted)."""
    results: int
    """Results waiting to be sent."""
    fal_median: float | None
    """The model's recent median fal time, None before a first result."""
    at_fal_for: float
    """Seconds the job has spent at fal already (0 before it was submitted)."""
    send_rate: float
    """Results sent per second now (the configured pace when none are being sent)."""

    @property
    def ahead(self) -> int:
        return self.in_queue + self.at_fal + self.results


def eta(figures: Figures) -> float | None:
    """Seconds until the result should reach the chat, None without a fal time to go by."""
    if figures.fal_median is None:
        return None
    at_fal = max(figures.fal_median - figures.at_fal_for, 0.0)
    sends = (figures.ahead + 1) / figures.send_rate
    return max(at_fal, sends)


def worth_a_status(wait: float, expected: float | None, behind: float = 0.0) -> bool:
    """Whether a status message that can leave in `wait` seconds arrives well before a
    result expected in `expected` seconds (None: no figure yet; the bound alone decides).
    `behind`: how long the prompt waited for a handler. Past the bound it is a peak before
    the results fill the line: every prompt waiting in the inbox wants a send for its result
    soon, and the user has a 👀 on the prompt already."""
    if wait > STATUS_MAX_WAIT or behind > STATUS_MAX_WAIT:
        return False
    return expected is None or wait <= STATUS_SHARE * expected


def median(durations: list[float]) -> float | None:
    return statistics.median(durations) if durations else None


def send_rate(sent: list[int], seconds: int, configured: float) -> float:
    """Results per second over the window, never above the configured pace; the configured
    pace when nothing was sent (nothing waited: a result would go at once)."""
    measured = sum(sent) / seconds
    return min(measured, configured) if measured > 0 else configured


async def record_fal_time(redis: ArqRedis, model: str, seconds: float) -> None:
    key = DURATIONS_PREFIX + model
    async with redis.pipeline(transaction=False) as pipe:
        pipe.lpush(key, round(seconds, 3))
        pipe.ltrim(key, 0, DURATIONS_KEPT - 1)
        await pipe.execute()


async def record_sent(redis: ArqRedis) -> None:
    key = f"{SENT_PREFIX}{int(time.time())}"
    async with redis.pipeline(transaction=False) as pipe:
        pipe.incr(key)
        pipe.expire(key, RATE_WINDOW * 3)
        await pipe.execute()


async def record_fal_position(redis: ArqRedis, job_id: str, position: int) -> None:
    await redis.set(POSITION_PREFIX + job_id, position, ex=POSITION_TTL)


async def figures(
    redis: ArqRedis,
    limiter: TelegramLimiter,
    *,
    job_id: str,
    mode: str,
    model: str,
    submitted_at: datetime | None,
    backlog: Backlog | None = None,
) -> Figures:
    """The figures for a job, read in one round trip (and the limiter's backlog, unless the
    caller has it)."""
    backlog = backlog or await limiter.backlog()
    now = int(time.time())
    sent_keys = [f"{SENT_PREFIX}{second}" for second in range(now - RATE_WINDOW, now)]
    queue = queue_of(mode)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zrank(queue, f"{SUBMIT}:{job_id}")
        pipe.zcount(queue, "-inf", now * 1000)
        pipe.get(POSITION_PREFIX + job_id)
        pipe.lrange(DURATIONS_PREFIX + model, 0, DURATIONS_KEPT - 1)
        pipe.mget(sent_keys)
        rank, ready, position, durations, sent = await pipe.execute()
    in_queue = ready if submitted_at is None and rank is None else rank or 0
    return Figures(
        in_queue=int(in_queue),
        at_fal=int(position or 0) if submitted_at is not None else 0,
        results=backlog.results_waiting,
        fal_median=median([float(d) for d in durations]),
        at_fal_for=(utcnow() - submitted_at).total_seconds() if submitted_at else 0.0,
        send_rate=send_rate([int(n or 0) for n in sent], RATE_WINDOW, 1 / backlog.interval),
    )


def rounded(seconds: float) -> tuple[int, str]:
    """An estimate as people say it: seconds up to a minute (by 5), then minutes."""
    if seconds < 60:
        return max(5, math.ceil(seconds / 5) * 5), "s"
    return math.ceil(seconds / 60), "min"
