"""Telegram Stars payments: checking a pre-checkout query, crediting a successful payment
once per charge id, taking the credits back when an admin refunds it, admin grants, and
the account a user sees in /balance.

Telegram holds the money only once the bot says yes to the pre-checkout query; the yes
checks that the invoice still matches a pack on sale (same credits, same Stars). The
credit itself is one insert that the database refuses a second time for the same
`telegram_payment_charge_id` (`core/domain/credits.py`), so a redelivered or concurrent update
credits nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.domain import credits
from core.domain.catalog import Pack, catalog
from core.domain.models import LedgerEntry
from core.infra.metrics import CREDITS_BOUGHT, PAYMENTS, STARS_EARNED

log = logging.getLogger(__name__)

CURRENCY = "XTR"


class Paid(StrEnum):
    CREDITED = "credited"
    DUPLICATE = "duplicate"
    INVALID = "invalid"


def offered_credits(payload: str, kind: str = "pack") -> tuple[str, int] | None:
    """The pack (or, with `kind` "plan", the plan) id and the credits an invoice payload
    names; None when it is not such a payload of ours."""
    parts = payload.split(":")
    if len(parts) != 3 or parts[0] != kind or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2])


def paid_for(payload: str, kind: str, *, charge_id: str, user_id: int) -> tuple[str, int] | None:
    """What a successful payment's payload of `kind` offered (id, credits); None, logged and
    counted as invalid, when it is not ours or has no charge id to make it once."""
    offered = offered_credits(payload, kind)
    if offered is None or not charge_id:
        log.error("payment %s by %s has a payload not ours: %r", charge_id, user_id, payload)
        PAYMENTS.labels(Paid.INVALID).inc()
        return None
    return offered


class Sold(Protocol):
    """What an invoice sells: a pack or a plan, its credits and its price in Stars."""

    credits: int
    stars: int


S = TypeVar("S", bound=Sold)


def checkout(
    find: Callable[[str], S | None], kind: str, payload: str, currency: str, total_amount: int
) -> S | None:
    """What a pre-checkout query pays for, if it is still sold on the same terms (same
    credits, same Stars): `find` looks a pack or a plan up by the id its payload of `kind`
    names. One check for both, so packs and plans are refused alike."""
    offered = offered_credits(payload, kind)
    sold = find(offered[0]) if offered else None
    ok = (
        sold is not None
        and offered is not None
        and sold.credits == offered[1]
        and currency == CURRENCY
        and sold.stars == total_amount
    )
    PAYMENTS.labels("pre_checkout_ok" if ok else "pre_checkout_refused").inc()
    return sold if ok else None


def checkout_pack(payload: str, currency: str, total_amount: int) -> Pack | None:
    """The pack a pre-checkout query buys, if it is still sold on the same terms."""
    return checkout(catalog().pack, "pack", payload, currency, total_amount)


async def record_payment(
    sessions: async_sessionmaker[AsyncSession],
    *,
    user_id: int,
    charge_id: str,
    payload: str,
    stars: int,
) -> tuple[Paid, int]:
    """Credit a successful payment once per charge id: the outcome and the credits added.
    `stars`: what the user paid (the payment's total_amount), counted with the credit."""
    offered = paid_for(payload, "pack", charge_id=charge_id, user_id=user_id)
    if offered is None:
        return Paid.INVALID, 0
    amount = offered[1]
    async with sessions.begin() as session:
        credited = await credits.credit_payment(
            session, user_id=user_id, charge_id=charge_id, credits=amount
        )
    outcome = Paid.CREDITED if credited else Paid.DUPLICATE
    PAYMENTS.labels(outcome).inc()
    if credited:
        CREDITS_BOUGHT.inc(amount)
        STARS_EARNED.inc(stars)
    return outcome, amount if credited else 0


async def paid_by(sessions: async_sessionmaker[AsyncSession], charge_id: str) -> LedgerEntry | None:
    """The credit a charge made (who paid, how many credits), if kadr credited it."""
    async with sessions() as session:
        return await credits.payment(session, charge_id)


async def take_back(sessions: async_sessionmaker[AsyncSession], paid: LedgerEntry) -> int:
    """The payment's Stars went back to the user: its credits leave the balance, once."""
    async with sessions.begin() as session:
        amount = await credits.take_back_payment(session, paid)
    PAYMENTS.labels("refunded").inc()
    return amount


async def grant(
    sessions: async_sessionmaker[AsyncSession], *, user_id: int, amount: int, ref: str
) -> bool:
    """An admin's gift, once per `ref`; False for a user kadr never saw."""
    async with sessions.begin() as session:
        given = await credits.grant(session, user_id=user_id, credits=amount, ref=ref)
    return given is not None


@dataclass(frozen=True)
class Account:
    balance: credits.Balance
    movements: list[LedgerEntry]


async def account_of(
    sessions: async_sessionmaker[AsyncSession], user_id: int, free_per_day: int, last: int = 5
) -> Account:
    """What /balance shows: the spendable balance (today's allowance included) and the
    last movements."""
    async with sessions() as session:
        balance = await credits.spendable(session, user_id, free_per_day)
        return Account(balance, await credits.movements(session, user_id, last))
