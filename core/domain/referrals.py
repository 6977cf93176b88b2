"""Referrals: an invitation link per user, who invited whom, and the credits both sides earn
when the newcomer's first job is delivered.

A link's start parameter is `r_` and the inviter's id in base 36 (Telegram allows
A-Z a-z 0-9 _ - in a start parameter). Only a user new to the bot is recorded as invited:
the update that brought them is the one that made their row (`first_contact`), so an
existing user following someone's link changes nothing. One inviter per user is the
table's primary key; nobody invites themselves. The one window: a handler that dies after
the middleware wrote the newcomer's row and before the invitation's row is run again as a
later contact, and records nothing.

The credits wait for the newcomer's first delivered job, so an account made only to be
invited brings nothing: `credit_first_delivery` runs in the transaction that moves a job to
`delivered` (`core/jobs/lifecycle.py`); it marks the invitation credited with a conditional
UPDATE and writes both shares to the ledger (`core/domain/credits.py`), whose unique
(reason, ref) makes each share once however often a delivery runs.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.domain import credits
from core.domain.catalog import catalog
from core.domain.models import Referral, User, utcnow
from core.infra.metrics import REFERRALS

PREFIX = "r_"
_DIGITS = string.digits + string.ascii_lowercase


def code_of(user_id: int) -> str:
    """The start parameter of the user's invitation link."""
    digits = ""
    while True:
        user_id, digit = divmod(user_id, 36)
        digits = _DIGITS[digit] + digits
        if user_id == 0:
            return PREFIX + digits


def inviter_of(start_parameter: str) -> int | None:
    """The inviter a start parameter names; None when it is no invitation."""
    code = start_parameter.removeprefix(PREFIX)
    if code == start_parameter or not code or len(code) > 16:
        return None
    try:
        return int(code, 36)
    except ValueError:
        return None


def first_contact(user: User) -> bool:
    """The update being handled is the one that made the user's row (the users middleware
    sets both times only when it inserts)."""
    return user.created_at == user.last_seen_at


async def record(
    sessions: async_sessionmaker[AsyncSession], *, user: User, start_parameter: str
) -> bool:
    """Write who invited `user`, if they are new to the bot, came by someone else's link,
    the inviter is a user kadr knows and nobody invited them before. Whether it was
    written."""
    inviter = inviter_of(start_parameter)
    if inviter is None or inviter == user.id or not first_contact(user):
        REFERRALS.labels("refused").inc()
        return False
    async with sessions.begin() as session:
        if await session.get(User, inviter) is None:
            REFERRALS.labels("refused").inc()
            return False
        insert = postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert
        written = await session.scalar(
            insert(Referral)
            .values(user_id=user.id, inviter_id=inviter, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=[Referral.user_id])
            .returning(Referral.user_id)
        )
    REFERRALS.labels("recorded" if written is not None else "refused").inc()
    return written is not None


async def credit_first_delivery(
    session: AsyncSession, user_id: int, now: datetime | None = None
) -> credits.Shares:
    """The user's job was delivered: if an invitation brought them and is not credited
    yet, credit both sides now (in the caller's transaction). Nothing for anyone else."""
    now = now or utcnow()
    inviter = await session.scalar(
        update(Referral)
        .where(Referral.user_id == user_id, Referral.credited_at.is_(None))
        .values(credited_at=now)
        .returning(Referral.inviter_id)
    )
    if inviter is None:
        return credits.Shares()
    terms = catalog().referrals
    shares = await credits.credit_invitation(
        session, newcomer_id=user_id, inviter_id=inviter, terms=terms, now=now
    )
    REFERRALS.labels("capped" if terms.inviter_credits and not shares.inviter else "credited").inc()
    return shares


@dataclass(frozen=True)
class Invitations:
    """What /invite shows: how many joined by the user's link, what it earned them."""

    joined: int
    earned: int


async def invitations_of(sessions: async_sessionmaker[AsyncSession], user_id: int) -> Invitations:
    async with sessions() as session:
        joined = await session.scalar(
            select(func.count()).select_from(Referral).where(Referral.inviter_id == user_id)
        )
        return Invitations(int(joined or 0), await credits.invitation_earnings(session, user_id))


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name
