"""Referrals on real databases: a link's code names its inviter; only a user's first
contact records an inviter, never themselves, never a second one; both sides are credited
once, when the newcomer's first job is delivered, however often that delivery is asked for
or whichever job comes next; an inviter past the daily cap earns nothing more that day
while the newcomer still does; and a subscription's period is granted once per charge."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.domain import credits, referrals, subscriptions
from core.domain.catalog import Referrals, catalog
from core.domain.credits import Shares
from core.domain.models import User
from core.domain.payments import Paid
from core.domain.users import touch_user
from core.jobs import lifecycle
from tests.builders import a_job

Sessions = async_sessionmaker[AsyncSession]
_users = itertools.count(930_000)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_kind(request: pytest.FixtureRequest) -> str:
    """`sessions` open each database kind in turn (tests/conftest.py)."""
    return str(request.param)


async def _touch(sessions: Sessions, user_id: int) -> User:
    """What the users middleware does with each update of the user."""
    async with sessions() as session:
        return await touch_user(
            session, user_id=user_id, username=None, first_name=None, language_code="en"
        )


async def _newcomer(sessions: Sessions) -> User:
    return await _touch(sessions, next(_users))


async def _paid(sessions: Sessions, user_id: int) -> int:
    async with sessions() as session:
        return (await credits.balance_of(session, user_id)).paid


async def _deliver_a_job(sessions: Sessions, user_id: int) -> None:
    job = a_job(user_id)
    assert await lifecycle.accept(sessions, job)
    assert await lifecycle.mark_completed(sessions, job.id, {"images": []})
    assert await lifecycle.mark_delivered(sessions, job, {"images": []})
    assert not await lifecycle.mark_delivered(sessions, job, {"images": []})


def test_a_code_names_its_inviter_and_nothing_else_is_a_code() -> None:
    for user_id in (1, 35, 36, 8_801_234_567):
        code = referrals.code_of(user_id)
        assert code.startswith("r_") and referrals.inviter_of(code) == user_id
    for garbage in ("r_", "r_!x", "x_12", "r_" + "z" * 40, "prompt words"):
        assert referrals.inviter_of(garbage) is None


async def test_both_sides_are_credited_once_on_the_first_delivery_only(
    sessions: Sessions,
) -> None:
    terms = catalog().referrals
    inviter = await _newcomer(sessions)
    newcomer = await _newcomer(sessions)
    link = referrals.code_of(inviter.id)
    assert await referrals.record(sessions, user=newcomer, start_parameter=link)
    assert await _paid(sessions, newcomer.id) == 0  # nothing on /start

    await _deliver_a_job(sessions, newcomer.id)
    await _deliver_a_job(sessions, newcomer.id)
    async with sessions.begin() as session:  # even asked for directly: nothing more
        assert await referrals.credit_first_delivery(session, newcomer.id) == Shares()

    assert await _paid(sessions, newcomer.id) == terms.newcomer_credits
    assert await _paid(sessions, inviter.id) == terms.inviter_credits
    seen = await referrals.invitations_of(sessions, inviter.id)
    assert (seen.joined, seen.earned) == (1, terms.inviter_credits)
    await _deliver_a_job(sessions, inviter.id)  # the inviter was invited by nobody
    assert await _paid(sessions, inviter.id) == terms.inviter_credits


async def test_an_existing_user_a_self_invitation_and_a_second_inviter_record_nothing(
    sessions: Sessions,
) -> None:
    first, second = await _newcomer(sessions), await _newcomer(sessions)
    existing = await _newcomer(sessions)
    existing = await _touch(sessions, existing.id)  # a later update: no longer new
    assert not await referrals.record(
        sessions, user=existing, start_parameter=referrals.code_of(first.id)
    )

    selfish = await _newcomer(sessions)
    assert not await referrals.record(
        sessions, user=selfish, start_parameter=referrals.code_of(selfish.id)
    )
    unknown = await _newcomer(sessions)
    assert not await referrals.record(
        sessions, user=unknown, start_parameter=referrals.code_of(999_999_999_999)
    )

    invited = await _newcomer(sessions)
    assert await referrals.record(
        sessions, user=invited, start_parameter=referrals.code_of(first.id)
    )
    # Another inviter for a user who has one (their first update handled again): refused.
    assert not await referrals.record(
        sessions, user=invited, start_parameter=referrals.code_of(second.id)
    )

    for user in (existing, selfish, unknown, invited):
        await _deliver_a_job(sessions, user.id)
    assert [await _paid(sessions, u.id) for u in (existing, selfish, unknown, second)] == [
        0,
        0,
        0,
        0,
    ]
    assert await _paid(sessions, first.id) == catalog().referrals.inviter_credits


async def test_an_inviter_past_the_daily_cap_earns_nothing_more_that_day(
    sessions: Sessions,
) -> None:
    terms = Referrals(inviter_credits=10, newcomer_credits=3, daily_cap=2)
    inviter = await _newcomer(sessions)
    newcomers = [await _newcomer(sessions) for _ in range(4)]
    today = datetime(2026, 12, 7, 10, tzinfo=UTC)
    shares = []
    for index, newcomer in enumerate(newcomers):
        when = today + timedelta(days=1) if index == 3 else today
        async with sessions.begin() as session:
            shares.append(
                await credits.credit_invitation(
                    session, newcomer_id=newcomer.id, inviter_id=inviter.id, terms=terms, now=when
                )
            )
    assert shares == [Shares(3, 10), Shares(3, 10), Shares(3, 0), Shares(3, 10)]
    assert await _paid(sessions, inviter.id) == 30


async def test_a_subscriptions_payments_grant_once_per_charge_and_move_its_end(
    sessions: Sessions,
) -> None:
    user = await _newcomer(sessions)
    plan = catalog().plans[0]
    start = datetime(2026, 12, 7, tzinfo=UTC)

    async def pay(charge: str, periods: int, first: bool) -> tuple[Paid, int]:
        return await subscriptions.record_payment(
            sessions,
            user_id=user.id,
            charge_id=charge,
            payload=plan.payload,
            stars=plan.stars,
            expires_at=start + periods * subscriptions.PERIOD,
            first=first,
        )

    assert await pay("c1", 1, True) == (Paid.CREDITED, plan.credits)
    assert await pay("c2", 2, False) == (Paid.CREDITED, plan.credits)
    assert await pay("c2", 2, False) == (Paid.DUPLICATE, 0)
    assert await pay("c3", 3, False) == (Paid.CREDITED, plan.credits)
    assert await _paid(sessions, user.id) == 3 * plan.credits

    async with sessions() as session:  # an admin's /refund finds a period's charge too
        period = await credits.payment(session, "c2")
    assert period is not None and (period.user_id, period.paid) == (user.id, plan.credits)
    held = await subscriptions.find(sessions, user.id, plan.id)
    assert held is not None
    assert (held.charge_id, held.expires_at) == ("c1", start + 3 * subscriptions.PERIOD)
    await subscriptions.set_cancelled(sessions, user.id, plan.id, True)
    assert [
        s.cancelled_at is not None for s in await subscriptions.current(sessions, user.id, start)
    ] == [True]
    assert await subscriptions.current(sessions, user.id, start + 4 * subscriptions.PERIOD) == []
