"""Telegram Stars subscriptions: plans sold by an invoice link with a 30-day
`subscription_period`, each period's credits granted once per charge id, and the state
/subscription shows (the plan, when the paid period ends, whether the bot cancelled its
renewal).

Telegram renews a subscription by itself: each renewal is a `successful_payment` with
`is_recurring` (the first one also has `is_first_recurring`) and a new
`telegram_payment_charge_id`, and no pre-checkout query. The credit is one ledger insert
(reason `subscription`, ref the charge id) that the database refuses a second time, in the
same transaction as the subscription's row, so a repeated update grants nothing more and
leaves the row as it was. Plan credits are kept like bought credits: what is unspent at a
period's end stays on the balance (nothing expires them).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.domain import credits
from core.domain.catalog import Plan, catalog
from core.domain.models import Reason, Subscription, utcnow
from core.domain.payments import Paid, checkout, paid_for
from core.infra.metrics import CREDITS_BOUGHT, PAYMENTS, STARS_EARNED

log = logging.getLogger(__name__)

#: The only `subscription_period` Telegram accepts: 30 days, in seconds.
PERIOD = timedelta(days=30)
PERIOD_SECONDS = int(PERIOD.total_seconds())


def checkout_plan(payload: str, currency: str, total_amount: int) -> Plan | None:
    """The plan a pre-checkout query subscribes to, if it is still sold on the same terms."""
    return checkout(catalog().plan, "plan", payload, currency, total_amount)


async def record_payment(
    sessions: async_sessionmaker[AsyncSession],
    *,
    user_id: int,
    charge_id: str,
    payload: str,
    stars: int,
    expires_at: datetime | None,
    first: bool,
) -> tuple[Paid, int]:
    """Grant a subscription period's credits once per charge id and keep the subscription's
    row in step: the outcome and the credits granted. `first`: the subscription's first
    payment (its charge id names the subscription from then on)."""
    offered = paid_for(payload, "plan", charge_id=charge_id, user_id=user_id)
    if offered is None:
        return Paid.INVALID, 0
    plan_id, amount = offered
    ends = expires_at or utcnow() + PERIOD
    async with sessions.begin() as session:
        credited = await credits.credit_payment(
            session,
            user_id=user_id,
            charge_id=charge_id,
            credits=amount,
            reason=Reason.SUBSCRIPTION,
        )
        if credited:
            await _keep(session, user_id, plan_id, charge_id, amount, stars, ends, first)
    outcome = Paid.CREDITED if credited else Paid.DUPLICATE
    PAYMENTS.labels(f"subscription_{outcome}").inc()
    if credited:
        CREDITS_BOUGHT.inc(amount)
        STARS_EARNED.inc(stars)
    return outcome, amount if credited else 0


async def _keep(
    session: AsyncSession,
    user_id: int,
    plan_id: str,
    charge_id: str,
    amount: int,
    stars: int,
    ends: datetime,
    first: bool,
) -> None:
    """A first payment starts (or restarts) the user's subscription to the plan; a renewal
    moves its end. A renewal of a row kadr lacks starts one too, named by its charge."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    now = utcnow()
    statement = insert(Subscription).values(
        user_id=user_id,
        plan_id=plan_id,
        charge_id=charge_id,
        credits=amount,
        stars=stars,
        expires_at=ends,
        cancelled_at=None,
        created_at=now,
        updated_at=now,
    )
    renewed = {"expires_at": ends, "updated_at": now}
    started = {**renewed, "charge_id": charge_id, "credits": amount, "stars": stars}
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[Subscription.user_id, Subscription.plan_id],
            set_={**started, "cancelled_at": None} if first else renewed,
        )
    )


async def current(
    sessions: async_sessionmaker[AsyncSession], user_id: int, now: datetime | None = None
) -> list[Subscription]:
    """The user's subscriptions whose paid period has not ended, soonest end first."""
    async with sessions() as session:
        found = await session.scalars(
            select(Subscription)
            .where(Subscription.user_id == user_id, Subscription.expires_at > (now or utcnow()))
            .order_by(Subscription.expires_at)
        )
        return list(found)


async def find(
    sessions: async_sessionmaker[AsyncSession], user_id: int, plan_id: str
) -> Subscription | None:
    async with sessions() as session:
        return await session.get(Subscription, (user_id, plan_id))


async def set_cancelled(
    sessions: async_sessionmaker[AsyncSession], user_id: int, plan_id: str, cancelled: bool
) -> None:
    """Record what Telegram accepted: the renewal cancelled (or enabled again) by the bot."""
    async with sessions.begin() as session:
        await session.execute(
            update(Subscription)
            .where(Subscription.user_id == user_id, Subscription.plan_id == plan_id)
            .values(cancelled_at=utcnow() if cancelled else None, updated_at=utcnow())
        )
