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

A status message is sent only when it would arrive well before the result
(`worth_a_status`): at a peak, when sends are booked seconds ahead or prompts wait for
handlers, it would cost one of the bot's 30 sends a second that a result needs and come just
before the picture. One that goes keeps its place in line (`status_bot`). The user's
message has a reaction instead, which is not a message: given by the webhook in a private chat
(core/telegram/seen.py), by the launch in a group (`bot/job_messages.acknowledge`).
The choice is kept per job, so a handler run again makes the same one (the replay rule).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiogram import Bot
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.credit_messages import buy_keyboard, no_credits_text
from bot.i18n import _
from bot.job_messages import (
    acknowledge,
    claim_refresh,
    post_status,
    progress_text,
    refresh_every,
)
from core.domain.credits import Allowance, NotEnoughCredits
from core.domain.models import Job, User
from core.jobs import estimate, lifecycle
from core.jobs.queue import enqueue_progress
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
from core.telegram.limits import TelegramLimiter
from core.telegram.outbox import SENT_TTL, status_bot, waited

#: A launch's choice between a status message and a reaction, per job (`Launcher._chosen`).
CHOSEN_PREFIX = "kadr:acknowledged:"


@dataclass(frozen=True)
class Launcher:
    """Starts jobs: `launch` is the one way a user's request becomes a job on its queue."""

    sessions: async_sessionmaker[AsyncSession]
    redis: ArqRedis
    quota: UserQuota
    allowance: Allowance
    limiter: TelegramLimiter

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
        return cls(resources.sessions, resources.redis, quota, allowance, resources.limiter)

    async def launch(
        self,
        bot: Bot,
        chat_id: int,
        user: User,
        request: JobRequest,
        *,
        update_id: int | None,
        ack_message_id: int | None = None,
    ) -> Job | None:
        """The job, or None when it was refused (the user has been told why). `update_id`:
        the Telegram update that asked for it, which names the job (see above); None for a
        request that came another way (the Mini App), which gets a job of its own.
        `ack_message_id`: the user's message to react to when no status message goes (None
        where the webhook reacted to it already, `bot/job_messages.unseen`)."""
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
        job.status_message_id, expected = await self._show(bot, job, ack_message_id)
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
        every = refresh_every(chat_id)
        if job.status_message_id is not None and (expected is None or expected > every):
            await enqueue_progress(self.redis, job.id, job.mode, tick=1, delay=every)
        return job

    async def _show(
        self, bot: Bot, job: Job, ack_message_id: int | None
    ) -> tuple[int | None, float | None]:
        """The status message's id, None when a reaction (or, for a button, its answer)
        acknowledges the request instead; and the seconds until the result is expected.
        A result expected before the first refresh would be due needs no refreshes."""
        backlog = await self.limiter.backlog()
        figures = await estimate.figures(
            self.redis,
            self.limiter,
            job_id=job.id,
            mode=job.mode,
            model=job.model,
            submitted_at=None,
            backlog=backlog,
        )
        expected = estimate.eta(figures)
        worth_it = estimate.worth_a_status(backlog.sends, expected, behind=waited(bot))
        text = await self._chosen(job, progress_text(job, figures) if worth_it else "")
        if text:
            await claim_refresh(self.redis, job, text)
            return await post_status(status_bot(bot), job, text), expected
        if ack_message_id is not None:
            await acknowledge(bot, job.chat_id, ack_message_id)
        return None, expected

    async def _chosen(self, job: Job, text: str) -> str:
        """The acknowledgment the first run for this job chose: its status text, or "" for a
        reaction. A handler run again after a crash must make the same calls with the same
        arguments (the replay rule, bot/routers/__init__.py), though the peak may have begun
        or ended in between and the figures moved; the choice is kept as long as the
        outbox keeps the first run's answers."""
        key = CHOSEN_PREFIX + job.id
        if await self.redis.set(key, text, nx=True, ex=SENT_TTL):
            return text
        chosen = await self.redis.get(key)
        return text if chosen is None else chosen.decode()

    def _short(self, short: NotEnoughCredits) -> str:
        return no_credits_text(short, self.allowance.free_per_day)
