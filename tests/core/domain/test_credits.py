"""The ledger on real databases: a balance never goes below zero however many prompts race,
a charge id is credited (and its Stars counted) once however many copies arrive at once, a
job is refunded at most once and only when it ends without a result, free credits are spent
first and topped up once a UTC day without accumulating."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from core.domain import credits
from core.domain.credits import Balance, NotEnoughCredits
from core.domain.models import Job, JobStatus, LedgerEntry, Reason, new_job_id
from core.domain.payments import Paid, record_payment
from core.domain.users import touch_user
from core.fal.client import FalSubmission
from core.infra.db import create_engine, session_factory
from core.jobs import lifecycle
from tests.builders import a_job
from tests.conftest import Sessions

_users = itertools.count(910_000)


#: The ledger's races on both databases kadr runs on.
pytestmark = pytest.mark.parametrize("database_kind", ["sqlite", "postgresql"], scope="module")


@pytest.fixture
async def pools(database: str) -> AsyncIterator[list[Sessions]]:
    """Two connection pools on the test's database: two processes'."""
    engines = [create_engine(database), create_engine(database)]
    yield [session_factory(engine) for engine in engines]
    for engine in engines:
        await engine.dispose()


async def _user(sessions: Sessions) -> int:
    user_id = next(_users)
    async with sessions() as session:
        await touch_user(
            session, user_id=user_id, username=None, first_name=None, language_code="en"
        )
    return user_id


async def _balance(sessions: Sessions, user_id: int) -> Balance:
    async with sessions() as session:
        return await credits.balance_of(session, user_id)


async def _count(sessions: Sessions, model: type, *where: object) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


async def test_fifty_prompts_racing_for_ten_credits_make_ten_jobs(
    pools: list[Sessions],
) -> None:
    """Half the prompts come through each pool, as from two processes."""
    user_id = await _user(pools[0])

    async def prompt(index: int) -> bool:
        try:
            return await lifecycle.accept(
                pools[index % 2], a_job(user_id), price=1, free_per_day=10
            )
        except NotEnoughCredits:
            return False

    accepted = await asyncio.gather(*(prompt(index) for index in range(50)))
    assert sum(accepted) == 10
    assert await _balance(pools[0], user_id) == Balance(free=0, paid=0)
    assert await _count(pools[0], Job, Job.user_id == user_id) == 10
    daily = (LedgerEntry.user_id == user_id, LedgerEntry.reason == Reason.DAILY)
    assert await _count(pools[1], LedgerEntry, *daily) >= 1


async def test_a_thousand_payments_with_a_hundred_repeated_charges_credit_nine_hundred(
    pools: list[Sessions],
) -> None:
    user_id = await _user(pools[0])
    charges = [f"stx-{user_id}-{index}" for index in range(900)]
    charges += charges[:100]
    earned = REGISTRY.get_sample_value("kadr_stars_earned_total") or 0.0

    outcomes = await asyncio.gather(
        *(
            record_payment(
                pools[index % 2],
                user_id=user_id,
                charge_id=charge,
                payload="pack:small:50",
                stars=50,
            )
            for index, charge in enumerate(charges)
        )
    )
    assert sum(outcome == Paid.CREDITED for outcome, _ in outcomes) == 900
    assert sum(outcome == Paid.DUPLICATE for outcome, _ in outcomes) == 100
    assert await _balance(pools[0], user_id) == Balance(free=0, paid=900 * 50)
    assert REGISTRY.get_sample_value("kadr_stars_earned_total") == earned + 900 * 50


async def test_a_failed_job_is_refunded_once_and_a_delivered_one_keeps_its_charge(
    sessions: Sessions,
) -> None:
    user_id = await _user(sessions)
    failing, delivered = a_job(user_id), a_job(user_id)
    assert await lifecycle.accept(sessions, failing, price=3, free_per_day=10)
    assert await lifecycle.accept(sessions, delivered, price=3, free_per_day=10)
    assert await _balance(sessions, user_id) == Balance(free=4)

    assert await lifecycle.fail(sessions, failing, "fal_rejected")
    assert not await lifecycle.fail(sessions, failing, "fal_rejected")
    assert not await lifecycle.cancel(sessions, failing)
    async with sessions.begin() as session:  # even asked for directly: nothing more
        assert await credits.refund(session, failing.id) == Balance()
    assert await _balance(sessions, user_id) == Balance(free=7)

    assert await lifecycle.mark_completed(sessions, delivered.id, {"images": []})
    assert await lifecycle.mark_delivered(sessions, delivered, {"images": []})
    assert await _balance(sessions, user_id) == Balance(free=7)
    assert (
        await _count(
            sessions,
            LedgerEntry,
            LedgerEntry.reason == Reason.REFUND,
            LedgerEntry.user_id == user_id,
        )
        == 1
    )


async def test_a_cancelled_job_gives_back_free_and_paid_credits_where_they_came_from(
    sessions: Sessions,
) -> None:
    user_id = await _user(sessions)
    await record_payment(
        sessions, user_id=user_id, charge_id=f"c{user_id}", payload="pack:x:5", stars=5
    )
    job = a_job(user_id)
    assert await lifecycle.accept(sessions, job, price=12, free_per_day=10)
    assert await _balance(sessions, user_id) == Balance(free=0, paid=3)
    assert await lifecycle.cancel(sessions, job)
    assert await _balance(sessions, user_id) == Balance(free=10, paid=5)


async def test_no_credits_means_no_job_and_nothing_taken(sessions: Sessions) -> None:
    user_id = await _user(sessions)
    job = a_job(user_id)
    with pytest.raises(NotEnoughCredits) as refused:
        await lifecycle.accept(sessions, job, price=1, free_per_day=0)
    assert (refused.value.price, refused.value.balance) == (1, Balance())
    assert await _count(sessions, Job, Job.id == job.id) == 0
    assert await _count(sessions, LedgerEntry, LedgerEntry.user_id == user_id) == 0


async def test_a_free_job_reserves_nothing(sessions: Sessions) -> None:
    user_id = await _user(sessions)
    job = a_job(user_id)
    assert await lifecycle.accept(sessions, job, price=0, free_per_day=0)
    assert await lifecycle.fail(sessions, job, "timeout")
    assert await _count(sessions, LedgerEntry, LedgerEntry.user_id == user_id) == 0


async def test_the_allowance_tops_up_once_a_day_and_does_not_accumulate(
    sessions: Sessions,
) -> None:
    user_id = await _user(sessions)
    monday = datetime(2026, 12, 7, 23, 0, tzinfo=UTC)

    async def reserve(price: int, now: datetime) -> Balance:
        async with sessions.begin() as session:
            return await credits.reserve(
                session, job_id=new_job_id(), user_id=user_id, price=price, free_per_day=10, now=now
            )

    assert await reserve(3, monday) == Balance(free=3)
    assert await _balance(sessions, user_id) == Balance(free=7)
    assert await reserve(7, monday + timedelta(minutes=30)) == Balance(free=7)
    with pytest.raises(NotEnoughCredits):  # spent today's: no second top-up the same day
        await reserve(1, monday + timedelta(minutes=40))
    tuesday = monday + timedelta(hours=2)
    assert await reserve(1, tuesday) == Balance(free=1)
    assert await _balance(sessions, user_id) == Balance(free=9)
    async with sessions() as session:
        assert await credits.spendable(session, user_id, 10, tuesday + timedelta(days=1)) == (
            Balance(free=10)
        )


@pytest.mark.parametrize(
    "ending",
    ["deadline", "refused_by_fal", "failed_by_fal", "cancelled", "undeliverable", "no_media"],
)
async def test_every_ending_without_a_result_refunds_the_job_once(
    sessions: Sessions, ending: str
) -> None:
    user_id = await _user(sessions)
    job = a_job(user_id)
    assert await lifecycle.accept(sessions, job, price=4, free_per_day=10)
    if ending == "deadline":
        assert await lifecycle.fail(sessions, job, "timeout")
    elif ending == "refused_by_fal":
        assert await lifecycle.fail(sessions, job, "fal_rejected", "422")
    elif ending == "failed_by_fal":
        assert await lifecycle.fail(sessions, job, "content_policy_violation", by_fal=True)
    elif ending == "cancelled":
        assert await lifecycle.cancel(sessions, job)
    else:
        assert await lifecycle.mark_completed(sessions, job.id, {"images": []})
        error = "undeliverable" if ending == "undeliverable" else "no_media_generated"
        assert await lifecycle.fail(sessions, job, error, notified=ending == "undeliverable")
    for _ in range(2):  # every ending asked for again: no second refund
        assert not await lifecycle.fail(sessions, job, "timeout")
        assert not await lifecycle.cancel(sessions, job)
    assert await _balance(sessions, user_id) == Balance(free=10)
    reasons = [Reason.RESERVE, Reason.REFUND]
    assert (
        await _count(
            sessions, LedgerEntry, LedgerEntry.ref == job.id, LedgerEntry.reason.in_(reasons)
        )
        == 2
    )


#: What may happen to a job after it was accepted, in any order and any number of times: the
#: worker's tasks and fal's webhooks run at least once, and a crash between two steps is the
#: same as a later step never coming (the sweeper ends the job) or coming twice.
STEPS = ("accept", "submitted", "completed", "fal_error", "fail", "cancel", "delivered")


async def _step(sessions: Sessions, job: Job, step: str) -> None:
    try:
        if step == "accept":
            await lifecycle.accept(sessions, job, price=2, free_per_day=10)
        elif step == "submitted":
            submission = FalSubmission(
                request_id=f"r-{job.id}", status_url="s", response_url="r", cancel_url="c"
            )
            await lifecycle.mark_submitted(sessions, job, submission, check_at=job.deadline_at)
        elif step == "completed":
            await lifecycle.mark_completed(sessions, job.id, {"images": []})
        elif step == "fal_error":
            await lifecycle.fail(sessions, job, "fal_error", by_fal=True)
        elif step == "fail":
            await lifecycle.fail(sessions, job, "timeout")
        elif step == "cancel":
            await lifecycle.cancel(sessions, job)
        else:
            await lifecycle.mark_delivered(sessions, job, {"images": []})
    except NotEnoughCredits:
        pass


async def test_whatever_happens_a_job_ends_charged_once_or_reserved_and_refunded_once(
    sessions: Sessions,
) -> None:
    chance = random.Random(12)
    user_id = await _user(sessions)
    await record_payment(
        sessions, user_id=user_id, charge_id=f"p{user_id}", payload="pack:x:150", stars=150
    )
    jobs = []
    for _ in range(120):
        job = a_job(user_id)
        await _step(sessions, job, "accept")
        for step in chance.choices(STEPS, k=chance.randint(0, 8)):
            await _step(sessions, job, step)
        jobs.append(job)
    async with sessions() as session:
        stored = {job.id: await session.get(Job, job.id) for job in jobs}
        entries = list(
            await session.scalars(select(LedgerEntry).where(LedgerEntry.user_id == user_id))
        )
    kept = 0
    for job in jobs:
        row = stored[job.id]
        moves = sorted((e.reason, e.amount) for e in entries if e.ref == job.id)
        if row is None:  # refused for lack of credits: nothing at all
            assert moves == []
        elif row.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            assert moves == [(Reason.REFUND, 2), (Reason.RESERVE, -2)], (row.status, moves)
        else:
            assert moves == [(Reason.RESERVE, -2)], (row.status, moves)
            kept += 2
    daily = sum(e.amount for e in entries if e.reason == Reason.DAILY)
    assert (await _balance(sessions, user_id)).total == daily + 150 - kept
    assert {row.status for row in stored.values() if row} >= {"delivered", "failed", "cancelled"}
