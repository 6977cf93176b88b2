"""Credits: the ledger repository and its rules. A balance is the sum of a user's movements;
nothing else holds one.

The database enforces every "once" (`uq_ledger_reason_ref`): one daily allowance per user
and UTC day, one reservation and one refund per job, one credit per Telegram charge id (a
pack's or a subscription period's), one share per side of an invitation, one helper refund
per job (the prompt helper's price, when it did not help; the job's refund after it gives
back only the rest); a second attempt inserts nothing (`ON CONFLICT DO NOTHING`) and says so.

A reservation reads the balance and then writes: two prompts of one user racing in two
processes must not both spend the last credits. So it first locks the user's row with a
no-op `UPDATE users`: on PostgreSQL that is the row lock `SELECT … FOR UPDATE` would take
(the second transaction waits, then reads the first one's reservation); on SQLite, where
`FOR UPDATE` does not exist, an UPDATE is what takes the database's one write lock at the
start of the transaction instead of at its first insert (a read first and a write later
would fail with "database is locked" rather than wait). One statement, both databases, and
the ledger stays the only source of a balance (no balance column to keep in step with it).
Nothing here commits: the caller owns the transaction (`core/jobs/lifecycle.py`, so a
reservation commits with its job row and a refund with its job's final move).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time

from sqlalchemy import Insert, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.domain.catalog import ModelSpec, Referrals, catalog
from core.domain.models import LedgerEntry, Reason, User, utcnow


@dataclass(frozen=True)
class Balance:
    free: int = 0
    paid: int = 0

    @property
    def total(self) -> int:
        return self.free + self.paid


class NotEnoughCredits(Exception):
    """A job costs more than the user has; no job is made."""

    def __init__(self, price: int, balance: Balance) -> None:
        super().__init__(f"price {price}, balance {balance.total}")
        self.price = price
        self.balance = balance


@dataclass(frozen=True)
class Allowance:
    """Who pays what: `free_per_day` (FREE_CREDITS_PER_DAY) and the admins, never charged."""

    free_per_day: int
    admins: frozenset[int] = field(default_factory=frozenset)

    def price(self, user_id: int, model: ModelSpec, options: dict[str, object]) -> int:
        """The model's price, and the prompt helper's when the job uses it."""
        if user_id in self.admins:
            return 0
        helper = catalog().prompt_helper.price if options.get("improve") else 0
        return model.cost(options) + helper


def day_ref(user_id: int, now: datetime) -> str:
    """The ref of a user's daily allowance: one per UTC day."""
    return f"{user_id}:{now.date().isoformat()}"


async def balance_of(session: AsyncSession, user_id: int) -> Balance:
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(LedgerEntry.free), 0),
                func.coalesce(func.sum(LedgerEntry.paid), 0),
            ).where(LedgerEntry.user_id == user_id)
        )
    ).one()
    return Balance(free=int(row[0]), paid=int(row[1]))


async def spendable(
    session: AsyncSession, user_id: int, free_per_day: int, now: datetime | None = None
) -> Balance:
    """The balance with today's allowance counted even before it is written: what the user
    could spend now. Reads only; a reservation writes the allowance."""
    now = now or utcnow()
    balance = await balance_of(session, user_id)
    due = await _allowance_due(session, user_id, balance, free_per_day, now)
    return Balance(free=balance.free + (due or 0), paid=balance.paid)


async def reserve(
    session: AsyncSession,
    *,
    job_id: str,
    user_id: int,
    price: int,
    free_per_day: int,
    now: datetime | None = None,
) -> Balance:
    """Take `price` for the job, free credits first; returns what was taken (nothing for a
    free job: no lock, no row). Raises NotEnoughCredits; the caller rolls back."""
    if price == 0:
        return Balance()
    now = now or utcnow()
    await _lock_user(session, user_id)
    balance = await _top_up(session, user_id, free_per_day, now)
    if balance.total < price:
        raise NotEnoughCredits(price, balance)
    taken = Balance(free=min(price, balance.free), paid=price - min(price, balance.free))
    await _insert_once(session, user_id, Reason.RESERVE, job_id, -taken.free, -taken.paid, now)
    return taken


async def reserved(session: AsyncSession, job_id: str) -> Balance:
    """What the job's reservation took, by kind (nothing for a job that reserved nothing)."""
    reservation = await _reservation(session, job_id)
    return Balance() if reservation is None else _taken(reservation)


async def refund(session: AsyncSession, job_id: str) -> Balance:
    """Give back what the job's reservation took, to the kinds it took it from, less what its
    helper refund gave back already; at most once per job. Returns what was given back
    (nothing for a job that reserved nothing)."""
    reservation = await _reservation(session, job_id)
    if reservation is None:
        return Balance()
    taken = _taken(reservation)
    helper = await _helper_refund(session, job_id)
    back = Balance(free=taken.free - helper.free, paid=taken.paid - helper.paid)
    inserted = await _insert_once(
        session, reservation.user_id, Reason.REFUND, job_id, back.free, back.paid, utcnow()
    )
    return back if inserted else Balance()


async def refund_helper(session: AsyncSession, job_id: str, price: int) -> Balance:
    """Give back the prompt helper's `price` out of the job's reservation: the helper did not
    help, the user's own words went. Bought credits first (the reservation took them last).
    At most once per job; the caller makes sure the job is still live in the same transaction
    (its row is locked), so a job refunded whole is not refunded this part again. Returns what
    was given back."""
    reservation = await _reservation(session, job_id)
    if reservation is None or price <= 0:
        return Balance()
    taken = _taken(reservation)
    paid = min(price, taken.paid)
    back = Balance(free=min(price - paid, taken.free), paid=paid)
    inserted = await _insert_once(
        session, reservation.user_id, Reason.HELPER_REFUND, job_id, back.free, back.paid, utcnow()
    )
    return back if inserted else Balance()


async def credit_payment(
    session: AsyncSession,
    *,
    user_id: int,
    charge_id: str,
    credits: int,
    reason: Reason = Reason.PAYMENT,
) -> bool:
    """Add bought credits once per `telegram_payment_charge_id` (`reason`: a pack's
    PAYMENT or a subscription period's SUBSCRIPTION); False for a charge already credited
    (a repeated or concurrent update)."""
    return await _insert_once(session, user_id, reason, charge_id, 0, credits, utcnow())


@dataclass(frozen=True)
class Shares:
    """What an invitation credited: the newcomer's share and the inviter's."""

    newcomer: int = 0
    inviter: int = 0


#: The ref of an inviter's share starts so, followed by the newcomer's id.
INVITED = "invited:"


async def credit_invitation(
    session: AsyncSession, *, newcomer_id: int, inviter_id: int, terms: Referrals, now: datetime
) -> Shares:
    """Credit both sides of an invitation (kept like bought credits), once per newcomer and
    side. The inviter's row is locked first, so two newcomers of one inviter credited at
    once count against the daily cap one after the other: past `terms.daily_cap` shares
    this UTC day the inviter gets nothing for this newcomer."""
    newcomer = terms.newcomer_credits
    if newcomer and not await _insert_once(
        session, newcomer_id, Reason.REFERRAL, f"joined:{newcomer_id}", 0, newcomer, now
    ):
        newcomer = 0
    inviter = terms.inviter_credits
    if not inviter or not await _lock_user(session, inviter_id):
        return Shares(newcomer=newcomer)
    today = datetime.combine(now.date(), time(), tzinfo=now.tzinfo)
    shares_today = await session.scalar(
        select(func.count()).where(
            LedgerEntry.user_id == inviter_id,
            LedgerEntry.reason == Reason.REFERRAL,
            LedgerEntry.ref.startswith(INVITED),
            LedgerEntry.created_at >= today,
        )
    )
    if (shares_today or 0) >= terms.daily_cap or not await _insert_once(
        session, inviter_id, Reason.REFERRAL, f"{INVITED}{newcomer_id}", 0, inviter, now
    ):
        inviter = 0
    return Shares(newcomer=newcomer, inviter=inviter)


async def invitation_earnings(session: AsyncSession, inviter_id: int) -> int:
    """Credits the inviter's shares of invitations have brought them."""
    total = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.paid), 0)).where(
            LedgerEntry.user_id == inviter_id,
            LedgerEntry.reason == Reason.REFERRAL,
            LedgerEntry.ref.startswith(INVITED),
        )
    )
    return int(total or 0)


async def payment(session: AsyncSession, charge_id: str) -> LedgerEntry | None:
    """The credit a Telegram charge made (a pack's or a subscription period's), if any."""
    return await session.scalar(
        select(LedgerEntry).where(
            LedgerEntry.reason.in_((Reason.PAYMENT, Reason.SUBSCRIPTION)),
            LedgerEntry.ref == charge_id,
        )
    )


async def take_back_payment(session: AsyncSession, paid: LedgerEntry) -> int:
    """After its Stars went back: take back the payment's credits, as many as are left
    (the balance never goes below zero), once per charge. Returns how many: asked again for
    the same charge, how many were taken then (a handler run again says what it said)."""
    await _lock_user(session, paid.user_id)
    left = (await balance_of(session, paid.user_id)).paid
    amount = max(0, min(paid.paid, left))
    ref = paid.ref or ""
    if await _insert_once(session, paid.user_id, Reason.PAYMENT_REFUND, ref, 0, -amount, utcnow()):
        return amount
    taken = await session.scalar(
        select(LedgerEntry.paid).where(
            LedgerEntry.reason == Reason.PAYMENT_REFUND, LedgerEntry.ref == ref
        )
    )
    return -int(taken or 0)


async def grant(session: AsyncSession, *, user_id: int, credits: int, ref: str) -> bool | None:
    """Give a known user credits (kept like bought ones) once per `ref`: whether this call
    gave them (False: the grant was made before); None for a user kadr never saw."""
    if not await _lock_user(session, user_id):
        return None
    return await _insert_once(session, user_id, Reason.GRANT, ref, 0, credits, utcnow())


async def movements(session: AsyncSession, user_id: int, limit: int) -> list[LedgerEntry]:
    """The user's last movements that changed something, newest first."""
    entries = await session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.user_id == user_id, (LedgerEntry.free != 0) | (LedgerEntry.paid != 0))
        .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
        .limit(limit)
    )
    return list(entries)


async def totals_since(session: AsyncSession, since: datetime) -> dict[str, int]:
    """Credits moved since `since`, summed by reason (reservations and refunds negative and
    positive as in the ledger)."""
    rows = await session.execute(
        select(LedgerEntry.reason, func.sum(LedgerEntry.free + LedgerEntry.paid))
        .where(LedgerEntry.created_at >= since)
        .group_by(LedgerEntry.reason)
    )
    return {str(reason): int(total or 0) for reason, total in rows.all()}


async def _reservation(session: AsyncSession, job_id: str) -> LedgerEntry | None:
    return await session.scalar(
        select(LedgerEntry).where(LedgerEntry.reason == Reason.RESERVE, LedgerEntry.ref == job_id)
    )


async def _helper_refund(session: AsyncSession, job_id: str) -> Balance:
    entry = await session.scalar(
        select(LedgerEntry).where(
            LedgerEntry.reason == Reason.HELPER_REFUND, LedgerEntry.ref == job_id
        )
    )
    return Balance() if entry is None else Balance(free=entry.free, paid=entry.paid)


def _taken(reservation: LedgerEntry) -> Balance:
    return Balance(free=-reservation.free, paid=-reservation.paid)


async def _lock_user(session: AsyncSession, user_id: int) -> bool:
    """Lock the user's row for the rest of the transaction; False when there is none."""
    result = await session.execute(
        update(User).where(User.id == user_id).values(last_seen_at=User.last_seen_at)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def _allowance_due(
    session: AsyncSession, user_id: int, balance: Balance, free_per_day: int, now: datetime
) -> int | None:
    """Free credits today's allowance adds (up to `free_per_day`, possibly 0); None when
    there is none to give: the allowance is off, or today's is written already. Checked
    once a day, not at every spend: free credits spent today are not topped up again."""
    if free_per_day <= 0:
        return None
    granted = await session.scalar(
        select(
            exists().where(
                LedgerEntry.reason == Reason.DAILY, LedgerEntry.ref == day_ref(user_id, now)
            )
        )
    )
    return None if granted else max(0, free_per_day - balance.free)


async def _top_up(session: AsyncSession, user_id: int, free_per_day: int, now: datetime) -> Balance:
    """Write today's allowance if it is due (the user's row is locked); the balance after.
    A day's row is written even when it adds nothing: it marks the day as topped up."""
    balance = await balance_of(session, user_id)
    due = await _allowance_due(session, user_id, balance, free_per_day, now)
    if due is not None and await _insert_once(
        session, user_id, Reason.DAILY, day_ref(user_id, now), due, 0, now
    ):
        return Balance(free=balance.free + due, paid=balance.paid)
    return balance


async def _insert_once(
    session: AsyncSession,
    user_id: int,
    reason: Reason,
    ref: str,
    free: int,
    paid: int,
    now: datetime,
) -> bool:
    """Insert a movement unless its (reason, ref) exists; whether it was inserted."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement: Insert = (
        insert(LedgerEntry)
        .values(user_id=user_id, reason=reason, ref=ref, free=free, paid=paid, created_at=now)
        .on_conflict_do_nothing(index_elements=[LedgerEntry.reason, LedgerEntry.ref])
        .returning(LedgerEntry.id)
    )
    return (await session.scalar(statement)) is not None
