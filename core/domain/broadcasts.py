"""The broadcasts repository: an admin's message to every user that is not banned, one user
at a time in id order.

Each recipient is claimed (`cursor` moved to them by a conditional UPDATE) and committed
before the send, so a run that dies mid-send goes on after that user when it runs again:
at most once per user, never twice. A send that did not leave (its moment is far, a 429)
gives the claim back. Two runs at once claim different users or nothing.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.domain.models import Broadcast, User, utcnow

Sessions = async_sessionmaker[AsyncSession]
RUNNING = "running"
DONE = "done"


async def create(
    sessions: Sessions, text: str, admin_chat_id: int, language: str, *, update_id: int
) -> tuple[Broadcast, int]:
    """The broadcast `update_id` asked for, made by its first run (a handler run again for
    the same update finds it), and how many users it is for."""
    async with sessions.begin() as session:
        broadcast = await session.scalar(select(Broadcast).where(Broadcast.update_id == update_id))
        if broadcast is None:
            broadcast = Broadcast(
                text=text,
                admin_chat_id=admin_chat_id,
                language=language,
                status=RUNNING,
                cursor=0,
                sent=0,
                skipped=0,
                created_at=utcnow(),
                update_id=update_id,
            )
            session.add(broadcast)
            await session.flush()
        audience = await session.scalar(
            select(func.count()).select_from(User).where(User.banned.is_(False))
        )
    return broadcast, int(audience or 0)


async def get(sessions: Sessions, broadcast_id: int) -> Broadcast | None:
    async with sessions() as session:
        return await session.get(Broadcast, broadcast_id, populate_existing=True)


async def running(sessions: Sessions) -> list[int]:
    """Broadcasts not finished: the sweeper enqueues them again (a no-op while queued)."""
    async with sessions() as session:
        return list(await session.scalars(select(Broadcast.id).where(Broadcast.status == RUNNING)))


async def latest(sessions: Sessions) -> Broadcast | None:
    async with sessions() as session:
        return await session.scalar(select(Broadcast).order_by(Broadcast.id.desc()).limit(1))


async def claim_next(sessions: Sessions, broadcast: Broadcast) -> tuple[int, int] | None:
    """The next user to send to, claimed, with the cursor before (to give the claim back);
    None when everyone has been."""
    async with sessions.begin() as session:
        while True:
            current = await session.scalar(
                select(Broadcast.cursor).where(
                    Broadcast.id == broadcast.id, Broadcast.status == RUNNING
                )
            )
            if current is None:
                return None
            user_id = await session.scalar(
                select(func.min(User.id)).where(User.id > current, User.banned.is_(False))
            )
            if user_id is None:
                return None
            claimed = await session.execute(
                update(Broadcast)
                .where(Broadcast.id == broadcast.id, Broadcast.cursor == current)
                .values(cursor=user_id)
            )
            if claimed.rowcount:  # type: ignore[attr-defined]
                return current, int(user_id)


async def give_back(sessions: Sessions, broadcast: Broadcast, user_id: int, before: int) -> None:
    """The send to `user_id` did not leave: the next run starts with them again."""
    async with sessions.begin() as session:
        await session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast.id, Broadcast.cursor == user_id)
            .values(cursor=before)
        )


async def count(sessions: Sessions, broadcast: Broadcast, *, sent: bool) -> None:
    column = Broadcast.sent if sent else Broadcast.skipped
    async with sessions.begin() as session:
        await session.execute(
            update(Broadcast).where(Broadcast.id == broadcast.id).values({column: column + 1})
        )


async def finish(sessions: Sessions, broadcast: Broadcast) -> bool:
    """Mark it done; False when it was already (the report goes out once)."""
    async with sessions.begin() as session:
        result = await session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast.id, Broadcast.status == RUNNING)
            .values(status=DONE, finished_at=utcnow())
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]
