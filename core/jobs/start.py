"""Turning a user's request into a job: check it, plan it, record it, put it on its queue.

The row is written before anything is enqueued, so a lost enqueue (Redis down) only delays
the job: the sweeper finds it queued and enqueues it again. A job records the update that
made it (unique), so an update handled twice makes one job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from arq.connections import ArqRedis
from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.domain import credits
from core.domain.catalog import PROMPT_MODES, STYLE_MODES, Mode, ModelSpec, catalog
from core.domain.models import Job, User, job_id_for, new_job_id
from core.domain.preferences import preferences_of
from core.infra.metrics import CREDIT_REFUSALS
from core.jobs.queries import get_job, live_jobs_of, new_job
from core.jobs.queue import enqueue_submit

log = logging.getLogger(__name__)

MAX_PROMPT = 1000


class Refusal(Exception):
    """The request cannot become a job; `key` names the text that tells the user why.
    `quiet`: the user was told a moment ago; say nothing this time."""

    def __init__(self, key: str, *, quiet: bool = False, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.quiet = quiet
        self.values = values


def check_prompt(prompt: str | None) -> str:
    prompt = (prompt or "").strip()
    if not prompt:
        raise Refusal("prompt_empty")
    if len(prompt) > MAX_PROMPT:
        raise Refusal("prompt_too_long", length=len(prompt), limit=MAX_PROMPT)
    return prompt


#: How long after warning a flooding user the next refusals stay silent.
WARN_EVERY = 60


class UserQuota:
    """Flood control per user: jobs started per minute and jobs in progress at once. A
    flood gets one warning a minute, not one refusal per message (which would be a flood of
    our own, under Telegram's 1 message a second per chat)."""

    def __init__(self, redis: ArqRedis, *, per_minute: int = 10, max_live: int = 5) -> None:
        storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            connection_pool=redis.connection_pool,  # type: ignore[arg-type]
            key_prefix="kadr:user-limit",
        )
        self._redis = redis
        self._limiter = MovingWindowRateLimiter(storage)
        self._rate = RateLimitItemPerMinute(per_minute)
        self.max_live = max_live

    async def check(self, session: AsyncSession, user_id: int) -> None:
        live = await live_jobs_of(session, user_id)
        if live >= self.max_live:
            raise Refusal("too_many_jobs", quiet=await self._warned(user_id), count=live)
        if not await self._limiter.hit(self._rate, str(user_id)):
            limit = self._rate.amount
            raise Refusal("too_many_requests", quiet=await self._warned(user_id), limit=limit)

    async def _warned(self, user_id: int) -> bool:
        """Whether the user was warned within WARN_EVERY (else this refusal is the warning)."""
        first = await self._redis.set(f"kadr:flood-warned:{user_id}", 1, nx=True, ex=WARN_EVERY)
        return not first


@dataclass(frozen=True)
class JobRequest:
    """What a user asked for. `model` None means the user's preferred model for the mode;
    `options` (photo, seed, `improve`, `style`, …) override the user's preferences; `parent`:
    the job whose result this request edits (a reply to it), continuing its chain."""

    mode: Mode
    prompt: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    model: ModelSpec | None = None
    parent: Job | None = None


def plan_job(user: User, *, chat_id: int, request: JobRequest, update_id: int | None) -> Job:
    """The job a request makes, with the user's preferences applied; its id follows from the
    update, so handling that update again plans the same job."""
    preferences = preferences_of(user)
    options = {**preferences.job_options(), **request.options}
    model = request.model or preferences.model_for(request.mode)
    improve = options.pop("improve", False) and request.mode in PROMPT_MODES
    if improve and catalog().prompt_helper.helps(request.prompt):
        options["improve"] = True
    style = catalog().style(options.pop("style", None)) if request.mode in STYLE_MODES else None
    if style is not None:
        options.update(style=style.id, **style.defaults.model_dump(exclude_none=True))
        styled = catalog().find(style.model) if style.model else None
        model = styled if styled is not None and styled.mode == request.mode else model
    return new_job(
        job_id=job_id_for(update_id) if update_id is not None else new_job_id(),
        update_id=update_id,
        user_id=user.id,
        chat_id=chat_id,
        language=user.language,
        model=model,
        prompt=request.prompt,
        options=options,
        parent=request.parent,
    )


#: What a job learns on its way (the helper's rewrite, the prompt fal got): a job made again
#: from it with a change (↩️, 🎨) starts without them and settles its own; the same again (🔁)
#: keeps them (`prompt_again`).
SETTLED_OPTIONS = ("improved_prompt", "prompt_sent")


def options_again(job: Job) -> dict[str, Any]:
    """A finished job's options, for a new job made from it."""
    return {key: value for key, value in job.options.items() if key not in SETTLED_OPTIONS}


def prompt_again(job: Job) -> dict[str, Any]:
    """The options that make a job's prompt again as it was (🔁): the prompt fal got, and the
    helper's rewrite for its caption, with the helper off, so the model gets the same words
    and the LLM is neither asked nor paid again. Nothing when fal got the user's words."""
    if "prompt_sent" not in job.options:
        return {}
    settled = {key: job.options[key] for key in SETTLED_OPTIONS if key in job.options}
    return {**settled, "improve": False}


async def recorded(sessions: async_sessionmaker[AsyncSession], job_id: str) -> Job | None:
    async with sessions() as session:
        return await get_job(session, job_id)


async def check_quota(
    sessions: async_sessionmaker[AsyncSession], quota: UserQuota, user_id: int
) -> None:
    async with sessions() as session:
        await quota.check(session, user_id)


def price_of(allowance: credits.Allowance, job: Job) -> int:
    """What the job costs its user (nothing for an admin, or for a model since removed)."""
    model = catalog().find(job.model)
    return allowance.price(job.user_id, model, job.options) if model is not None else 0


async def check_credits(
    sessions: async_sessionmaker[AsyncSession], allowance: credits.Allowance, job: Job
) -> int:
    """The job's price, once the user is seen to have it now (NotEnoughCredits otherwise):
    refused before anything is sent. `lifecycle.accept` checks again as it reserves."""
    price = price_of(allowance, job)
    if price == 0:
        return 0
    async with sessions() as session:
        balance = await credits.spendable(session, job.user_id, allowance.free_per_day)
    if balance.total < price:
        CREDIT_REFUSALS.labels(job.mode).inc()
        raise credits.NotEnoughCredits(price, balance)
    return price


async def enqueue_job(redis: ArqRedis, job: Job) -> None:
    """Put the recorded job's submit on its queue; if Redis is down, the sweeper will."""
    try:
        await enqueue_submit(redis, job.id, job.mode)
    except RedisError:
        log.warning("could not enqueue job %s; the sweeper will", job.id)
