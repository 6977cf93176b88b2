"""What an admin's /stats shows: the day so far (UTC) from the database, and the backlog
from Redis — users, jobs by mode and outcome, failures by reason, credits spent and bought,
queue and inbox depth."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.domain.catalog import catalog
from core.domain.credits import totals_since
from core.domain.models import Reason, utcnow
from core.domain.users import count_users
from core.jobs.queries import failures_since, jobs_since
from core.jobs.queue import queue_name
from core.telegram.inbox import Inbox

#: The movements of credits spent on jobs: reserved, and what went back.
SPENDING = (Reason.RESERVE, Reason.REFUND, Reason.HELPER_REFUND)


@dataclass(frozen=True)
class Stats:
    users: int
    jobs: dict[tuple[str, str], int]
    failures: dict[str, int]
    #: Credits reserved today minus credits given back today.
    spent: int
    bought: int
    queues: dict[str, int]
    inbox: int
    dead_letters: int


def start_of_day(now: datetime) -> datetime:
    return datetime.combine(now.date(), time(), tzinfo=now.tzinfo)


async def gather_stats(
    sessions: async_sessionmaker[AsyncSession], redis: Redis, dedup_ttl: int
) -> Stats:
    since = start_of_day(utcnow())
    async with sessions() as session:
        users = await count_users(session)
        jobs = await jobs_since(session, since)
        failures = await failures_since(session, since)
        moved = await totals_since(session, since)
    names: list[str] = sorted({mode.queue for mode in catalog().modes.values()})
    queues = {name: int(await redis.zcard(queue_name(name))) for name in names}
    inbox = await Inbox(redis, dedup_ttl=dedup_ttl).stats()
    return Stats(
        users=users,
        jobs=jobs,
        failures=failures,
        spent=-sum(moved.get(reason, 0) for reason in SPENDING),
        bought=moved.get(Reason.PAYMENT, 0),
        queues=queues,
        inbox=inbox.depth,
        dead_letters=inbox.dead,
    )
