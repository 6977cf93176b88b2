"""Credits and Telegram Stars: /buy, the pack buttons, the pre-checkout answer, the
successful payment, /balance and /paysupport. The money rules are in `core/domain/payments.py`;
this only talks.

The pre-checkout answer is not a message: it is never paced behind sends
(`core/telegram/outbox.py`), and its update is not queued behind the chat's
(`core/telegram/inbox.py`).
"""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, Filter
from aiogram.types import CallbackQuery, Message, PreCheckoutQuery
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.credit_messages import (
    BuyButton,
    balance_text,
    record_and_thank,
    send_invoice,
    send_offer,
)
from bot.i18n import _
from core.domain.catalog import catalog
from core.domain.credits import Allowance
from core.domain.models import User
from core.domain.payments import account_of, checkout_pack, record_payment

router = Router(name="payments")


class SuccessfulPayment(Filter):
    """A service message saying a payment went through (a coroutine: see bot/filters.py)."""

    async def __call__(self, message: Message) -> bool:
        return message.successful_payment is not None


@router.message(Command("buy"))
async def buy(message: Message) -> None:
    await send_offer(message.bot, message.chat.id)  # type: ignore[arg-type]


@router.callback_query(BuyButton.filter())
async def on_buy(query: CallbackQuery, callback_data: BuyButton) -> None:
    await query.answer()
    chat_id = query.message.chat.id if query.message else query.from_user.id
    pack = catalog().pack(callback_data.pack_id) if callback_data.pack_id else None
    if pack is not None:
        await send_invoice(query.bot, chat_id, pack)  # type: ignore[arg-type]
    else:
        await send_offer(query.bot, chat_id)  # type: ignore[arg-type]


@router.pre_checkout_query()
async def pre_checkout(query: PreCheckoutQuery) -> None:
    if checkout_pack(query.invoice_payload, query.currency, query.total_amount) is None:
        await query.answer(ok=False, error_message=_("pack_unknown"))
    else:
        await query.answer(ok=True)


@router.message(SuccessfulPayment())
async def paid(
    message: Message,
    user: User,
    sessions: async_sessionmaker[AsyncSession],
    allowance: Allowance,
) -> None:
    await record_and_thank(message, user, sessions, allowance, record_payment, "payment_done")


@router.message(Command("balance"))
async def balance(
    message: Message,
    user: User,
    sessions: async_sessionmaker[AsyncSession],
    allowance: Allowance,
) -> None:
    account = await account_of(sessions, user.id, allowance.free_per_day)
    await message.answer(balance_text(account, allowance.free_per_day))


@router.message(Command("paysupport"))
async def paysupport(message: Message) -> None:
    await message.answer(_("paysupport"))
