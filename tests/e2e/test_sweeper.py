"""The sweeper, the net under the push-only pipeline: jobs whose arq job was lost, and jobs
past their deadline, seen as the user sees them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.domain.models import Job, User, new_job_id, utcnow
from sandbox.control import FalSandbox, TelegramSandbox


async def orphan_job(
    db: AsyncEngine, user_id: int, *, age: timedelta, deadline_in: timedelta
) -> str:
    """A queued job as a crash leaves it: in the database, not in Redis."""
    now = utcnow()
    job_id = new_job_id()
    async with db.begin() as connection:
        await connection.execute(
            insert(User).values(
                id=user_id,
                language="en",
                preferences={},
                banned=False,
                created_at=now,
                last_seen_at=now,
            )
        )
        await connection.execute(
            insert(Job).values(
                id=job_id,
                user_id=user_id,
                chat_id=user_id,
                language="en",
                mode="text_to_image",
                model="fal-ai/flux/schnell",
                prompt="a lost lantern",
                options={},
                status="queued",
                deadline_at=now + deadline_in,
                created_at=now - age,
                updated_at=now - age,
            )
        )
    return job_id


async def status_of(db: AsyncEngine, job_id: str) -> tuple[str, str | None]:
    async with db.connect() as connection:
        row = (
            await connection.execute(select(Job.status, Job.error).where(Job.id == job_id))
        ).one()
    return row.status, row.error


async def test_a_queued_job_lost_from_redis_is_enqueued_again(
    telegram: TelegramSandbox, fal: FalSandbox, db: AsyncEngine
) -> None:
    job_id = await orphan_job(db, 8001, age=timedelta(minutes=2), deadline_in=timedelta(minutes=5))
    [photo] = telegram.wait_for("sendPhoto", chat_id=8001, timeout=30)
    assert photo["params"]["caption"].startswith("a lost lantern")
    assert await status_of(db, job_id) == ("delivered", None)
    assert fal.status_checks(fal.requests("submit")) == []


async def test_a_job_past_its_deadline_fails_with_a_message(
    telegram: TelegramSandbox, fal: FalSandbox, db: AsyncEngine
) -> None:
    job_id = await orphan_job(
        db, 8002, age=timedelta(minutes=10), deadline_in=-timedelta(minutes=1)
    )
    [notice] = telegram.wait_for("sendMessage", chat_id=8002, timeout=30)
    assert notice["params"]["text"].startswith("⌛ This took too long")
    assert await status_of(db, job_id) == ("failed", "timeout")
    assert fal.requests("submit") == []
