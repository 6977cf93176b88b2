"""The update consumer: takes Telegram updates from the durable inbox and runs their handlers,
in order per chat, in as many processes as run `kadr worker`.

A consumer leases inbox partitions that have updates waiting, drains each in order and lets
it go; the leases it holds are renewed in the background, and a partition whose lease was
lost (a stalled process) is dropped at once: its new holder handles the head again. An
update leaves the inbox only after its handler finished. A handler that fails is tried again
after a pause; after `MAX_TRIES` tries, counted in Redis so a consumer killed by the update
counts too, the update goes to the dead letters (`kadr inbox`), and the chat moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
from typing import Any

from aiogram import Dispatcher
from aiogram.types import Update
from pydantic import ValidationError
from redis.exceptions import RedisError

from core.infra.logs import log_fields
from core.infra.metrics import INBOX_DEAD, INBOX_DEPTH, INBOX_OLDEST_AGE, TELEGRAM_UPDATES
from core.infra.retry import is_outage
from core.jobs.queue import JobQueues
from core.telegram.inbox import LEASE_SECONDS, PARTITIONS, Entry, Inbox
from core.telegram.outbox import Outbox

log = logging.getLogger(__name__)

#: Partitions one process drains at once. A handler mostly waits (database, Redis, its
#: send's moment), so many run side by side; each holds a database connection only while it
#: queries.
PARTITIONS_AT_ONCE = 64
#: ... and while the jobs' own tasks are behind (more than `TASKS_BEHIND` ready to run on the
#: job queues this process also serves: arq runs at most 100 at once per process). The tasks
#: and the handlers share the process's loop, database and Redis pools, by the number of
#: coroutines that want them:
#: 64 drains took the lion's share, and at a peak the jobs already made waited while prompts
#: were handled far faster than their pictures could leave (bench W5: 3-5 results a second
#: until the inbox was drained, then 29). Prompts handled at about the pace of the sends lose
#: nothing: every one has its 👀 already.
PARTITIONS_WHEN_BEHIND = 8
TASKS_BEHIND = 100
BEHIND_EVERY = 0.5
POLL_EVERY = 0.05
#: Pauses between tries of a failing handler within one consumer: a database or Redis blip
#: of a few seconds passes without losing the update.
RETRY_PAUSES = (0.5, 1.0, 2.0, 4.0)
MAX_TRIES = len(RETRY_PAUSES) + 1
OUTAGE_PAUSE = 0.5
OUTAGE_PAUSE_CAP = 5.0
STATS_EVERY = 5.0
STOP_GRACE = 10.0


class _Invalid(Exception):
    """Not a Telegram update aiogram can read: a dead letter at once, no retry helps."""


def kind_of(update: Update) -> str:
    try:
        return update.event_type
    except Exception:  # aiogram raises for update kinds it does not know
        return "unknown"


class UpdateConsumer:
    def __init__(
        self,
        inbox: Inbox,
        dispatcher: Dispatcher,
        outbox: Outbox,
        owner: str,
        job_queues: JobQueues | None = None,
    ) -> None:
        """`job_queues`: the jobs' queues this process serves too, watched for being behind
        (none: never)."""
        self._inbox = inbox
        self._dispatcher = dispatcher
        self._outbox = outbox
        self._owner = owner
        self._job_queues = job_queues
        self._room = PARTITIONS_AT_ONCE
        self._drains: dict[int, asyncio.Task[None]] = {}
        self._lost: set[int] = set()
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Until `stop()`: claim partitions, renew leases, report the inbox's size."""
        helpers = [
            asyncio.create_task(self._keep_leases()),
            asyncio.create_task(self._report()),
            asyncio.create_task(self._watch_tasks()),
        ]
        await self._check_tasks()
        try:
            while not self._stopping.is_set():
                await self._claim()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), POLL_EVERY)
            await self._finish()
        finally:
            for helper in helpers:
                helper.cancel()

    async def _finish(self) -> None:
        """Give the updates in hand `STOP_GRACE` to finish; the rest stay in the inbox, their
        drains let go of their partitions, and another consumer handles them."""
        drains = set(self._drains.values())
        if not drains:
            return
        _, late = await asyncio.wait(drains, timeout=STOP_GRACE)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)

    def stop(self) -> None:
        """Finish the update each drain is on, then let go of the partitions."""
        self._stopping.set()

    async def _watch_tasks(self) -> None:
        while True:
            await asyncio.sleep(BEHIND_EVERY)
            await self._check_tasks()

    async def _check_tasks(self) -> None:
        """Sets `_room`: fewer partitions at once while the jobs' tasks are behind."""
        if self._job_queues is None:
            return
        with contextlib.suppress(RedisError):
            behind = await self._job_queues.ready() > TASKS_BEHIND
            self._room = PARTITIONS_WHEN_BEHIND if behind else PARTITIONS_AT_ONCE

    async def _claim(self) -> None:
        room = self._room - len(self._drains)
        if room <= 0:
            return
        try:
            taken = await self._inbox.claim(self._owner, room, random.randrange(PARTITIONS))
        except RedisError as exc:
            log.warning("inbox unavailable (%s); trying again", exc)
            await asyncio.sleep(1.0)
            return
        for partition in taken:
            self._lost.discard(partition)
            if partition in self._drains:
                continue  # lost and taken back while its drain still runs: that drain goes on
            task = asyncio.create_task(self._drain(partition))
            self._drains[partition] = task
            task.add_done_callback(functools.partial(self._forget, partition))

    def _forget(self, partition: int, task: asyncio.Task[None] | None = None) -> None:
        """Only the partition's own drain may forget it: a newer one may have replaced it."""
        if self._drains.get(partition) is (task or asyncio.current_task()):
            del self._drains[partition]

    async def _drain(self, partition: int) -> None:
        try:
            while not self._stopping.is_set() and partition not in self._lost:
                if len(self._drains) > self._room:
                    return  # over the room: let go, the partition is claimed again later
                try:
                    entry = await self._inbox.head(partition)
                    if entry is None:
                        return
                    await self._handle(partition, entry)
                except RedisError as exc:
                    log.warning("inbox partition %s: Redis failed (%s)", partition, exc)
                    await asyncio.sleep(1.0)
        finally:
            # Forgotten before the lease goes, so a claim right after starts a fresh drain.
            self._forget(partition)
            with contextlib.suppress(RedisError):
                await self._inbox.release(partition, self._owner)

    async def _handle(self, partition: int, entry: Entry) -> None:
        update_id = _update_id(entry)
        with log_fields(update_id=update_id):
            await self._run(partition, entry, update_id)

    async def _run(self, partition: int, entry: Entry, update_id: int) -> None:
        tries = await self._inbox.begin(update_id)
        kind = "unknown"
        try:
            if tries > MAX_TRIES:
                raise RuntimeError(f"given up after {tries - 1} tries (the consumer died?)")
            update = self._parse(entry, update_id, first_run=tries == 1)
            kind = kind_of(update)
            outage = 0
            while True:
                try:
                    await self._feed(update, kind)
                    break
                except Exception as exc:
                    update = self._parse(entry, update_id, first_run=False)
                    if is_outage(exc):
                        outage += 1
                        await self._wait_out_outage(update_id, exc, outage)
                        continue
                    if tries >= MAX_TRIES:
                        raise
                    pause = RETRY_PAUSES[tries - 1]
                    log.warning(
                        "handler failed for update %s (%s, try %s): %r; again in %gs",
                        update_id,
                        kind,
                        tries,
                        exc,
                        pause,
                    )
                    await asyncio.sleep(pause)
                    tries = await self._inbox.begin(update_id)
        except Exception as exc:
            await self._dead_letter(partition, entry, update_id, kind, exc, tries)
            return
        if await self._inbox.ack(partition, self._owner, entry, update_id):
            TELEGRAM_UPDATES.labels(kind, "handled" if tries == 1 else "redelivered").inc()
            log.debug("update %s handled (%s, try %s)", update_id, kind, tries)
        else:
            self._lost.add(partition)
            log.warning("lost partition %s while handling update %s", partition, update_id)

    async def _wait_out_outage(self, update_id: int, exc: Exception, outage: int) -> None:
        """Redis, the database or Telegram did not answer: not the update's fault, so it is
        tried again, without counting, for as long as the outage lasts."""
        if self._stopping.is_set():
            raise asyncio.CancelledError
        pause = min(OUTAGE_PAUSE * 2 ** (outage - 1), OUTAGE_PAUSE_CAP)
        log.warning("update %s waits for %r; again in %gs", update_id, exc, pause)
        await asyncio.sleep(pause)

    def _parse(self, entry: Entry, update_id: int, *, first_run: bool) -> Update:
        """The update, read with the Bot its handlers answer with (`Outbox.reply`), so that
        `message.answer()` and the handler's `bot` are the same Bot. Read again for each run:
        aiogram's objects keep the Bot they were read with, and a run's calls are numbered
        from its first for the replay."""
        bot = self._outbox.reply(update_id, first_run=first_run, received_at=entry.accepted_at)
        try:
            return Update.model_validate(json.loads(entry.update), context={"bot": bot})
        except (ValueError, ValidationError) as exc:
            raise _Invalid(str(exc).splitlines()[0]) from None

    async def _feed(self, update: Update, kind: str) -> None:
        if kind == "unknown":
            return  # a kind this aiogram does not know: nothing listens to it
        assert update.bot is not None  # read with its replying Bot (`_parse`)
        await self._dispatcher.feed_update(update.bot, update)

    async def _dead_letter(
        self,
        partition: int,
        entry: Entry,
        update_id: int,
        kind: str,
        exc: Exception,
        tries: int,
    ) -> None:
        reason = (
            f"not a Telegram update: {exc}"
            if isinstance(exc, _Invalid)
            else f"{type(exc).__name__}: {exc}"
        )
        if await self._inbox.dead_letter(
            partition, self._owner, entry, update_id, reason[:500], tries
        ):
            TELEGRAM_UPDATES.labels(kind, "dead_lettered").inc()
            log.error("update %s (%s) moved to the dead letters: %s", update_id, kind, reason)
        else:
            self._lost.add(partition)

    async def _keep_leases(self) -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            try:
                lost = await self._inbox.renew(self._owner, list(self._drains))
            except RedisError as exc:
                log.warning("inbox leases not renewed (%s)", exc)
                continue
            lost &= set(self._drains)  # a drain that let go meanwhile lost nothing
            if lost:
                log.warning("inbox partitions lost to another consumer: %s", sorted(lost))
                self._lost |= lost

    async def _report(self) -> None:
        while True:
            with contextlib.suppress(RedisError):
                stats = await self._inbox.stats()
                INBOX_DEPTH.set(stats.depth)
                INBOX_OLDEST_AGE.set(stats.oldest_age)
                INBOX_DEAD.set(stats.dead)
            await asyncio.sleep(STATS_EVERY)


def _update_id(entry: Entry) -> int:
    """The id the webhook checked; read without building the update (it may not parse)."""
    body: Any = json.loads(entry.update)
    return int(body["update_id"])
