"""Starting a job from any handler: check it, post its status message, record it, enqueue it.

Every way to start a job (a prompt, a photo, a button under a result) ends here, so the
status message, its Cancel button and the refusal texts are the same everywhere.

A job the user cannot pay for is refused before anything is sent (no status message, no
row, no fal call). Two prompts racing for the last credits can both pass that check; the
reservation, in the same transaction as the row, lets only what the balance covers through,
and the other's status message becomes the refusal.

The status message goes out before the row is written: a handler's send may wait for its
moment behind a backlog, and a row already written would look stuck to the sweeper. The
job's id follows from its update, so a handler run again finds the job and enqueues it
again (a no-op) instead of making a second one.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiogram import Bot
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.credit_messages import buy_keyboard, no_credits_text
from bot.i18n import _
from bot.job_messages import post_status
from core.domain.credits import Allowance, NotEnoughCredits
from core.domain.models import Job, User
from core.jobs import lifecycle
from core.jobs.start import (
    JobRequest,
    Refusal,
    UserQuota,
    check_credits,
    check_quota,
    enqueue_job,
    plan_job,
    recorded,
)
from core.resources import Resources


@dataclass(frozen=True)
class Launcher:
    """Starts jobs: `launch` is the one way a user's request becomes a job on its queue."""

    sessions: async_sessionmaker[AsyncSession]
    redis: ArqRedis
    quota: UserQuota
    allowance: Allowance

    @classmethod
    def of(cls, resources: Resources) -> Launcher:
        """The process's launcher: the users' quota and daily allowance as configured."""
        config = resources.config
        quota = UserQuota(
            resources.redis,
            per_minute=config.USER_JOBS_PER_MINUTE,
            max_live=config.USER_LIVE_JOBS,
        )
        allowance = Allowance(config.FREE_CREDITS_PER_DAY, config.admin_ids)
        return cls(resources.sessions, resources.redis, quota, allowance)

    async def launch(
        self, bot: Bot, chat_id: int, user: User, request: JobRequest, *, update_id: int | None
    ) -> Job | None:
        """The job, or None when it was refused (the user has been told why). `update_id`:
        the Telegram update that asked for it, which names the job (see above); None for a
        request that came another way (the Mini App), which gets a job of its own."""
        job = plan_job(user, chat_id=chat_id, request=request, update_id=update_id)
        existing = await recorded(self.sessions, job.id)
        if existing is not None:
            await enqueue_job(self.redis, existing)
            return existing
        try:
            await check_quota(self.sessions, self.quota, user.id)
            price = await check_credits(self.sessions, self.allowance, job)
        except Refusal as refusal:
            if not refusal.quiet:
                await bot.send_message(chat_id, _(refusal.key, **refusal.values))
            return None
        except NotEnoughCredits as short:
            await bot.send_message(chat_id, self._short(short), reply_markup=buy_keyboard())
            return None
        job.status_message_id = await post_status(bot, job)
        try:
            await lifecycle.accept(
                self.sessions, job, price=price, free_per_day=self.allowance.free_per_day
            )
        except NotEnoughCredits as short:
            await bot.edit_message_text(
                self._short(short),
                chat_id=chat_id,
                message_id=job.status_message_id,
                reply_markup=buy_keyboard(),
            )
            return None
        await enqueue_job(self.redis, job)
        return job

    def _short(self, short: NotEnoughCredits) -> str:
        return no_credits_text(short, self.allowance.free_per_day)
