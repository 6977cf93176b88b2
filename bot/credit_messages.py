"""Credits as the user sees them: the "not enough credits" answer with its 💳 button, the
pack offer and the Stars invoice, the thanks for a payment, and the /balance statement. The
prompt handlers (through the Launcher) and the payments and subscriptions routers use it, so
buying looks the same from anywhere.

Called from handlers only: texts are in the update's language (bot/i18n.py).
"""

from __future__ import annotations

from typing import Protocol

from aiogram import Bot
from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup, LabeledPrice, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import _
from core.domain.catalog import Pack, catalog
from core.domain.credits import Allowance, NotEnoughCredits
from core.domain.models import User
from core.domain.payments import CURRENCY, Account, Paid, account_of


class BuyButton(CallbackData, prefix="buy"):
    """`pack_id`: the pack to invoice; empty: show the offer (the 💳 under a refusal)."""

    pack_id: str = ""


def buy_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("button_buy"), callback_data=BuyButton())
    return builder.as_markup()


def no_credits_text(short: NotEnoughCredits, free_per_day: int) -> str:
    key = "no_credits_tomorrow" if free_per_day > 0 else "no_credits"
    return _(key, price=short.price, balance=short.balance.total, free=free_per_day)


async def send_offer(bot: Bot, chat_id: int) -> None:
    """The only pack's invoice, or a button per pack when there are several."""
    packs = catalog().packs
    if len(packs) == 1:
        await send_invoice(bot, chat_id, packs[0])
        return
    builder = InlineKeyboardBuilder()
    for pack in packs:
        label = _("pack_button", credits=pack.credits, stars=pack.stars)
        builder.button(text=label, callback_data=BuyButton(pack_id=pack.id))
    builder.adjust(1)
    await bot.send_message(chat_id, _("buy_choose"), reply_markup=builder.as_markup())


async def send_invoice(bot: Bot, chat_id: int, pack: Pack) -> None:
    """A Stars invoice: currency XTR, no provider token, one price."""
    title = _("invoice_title", credits=pack.credits)
    await bot.send_invoice(
        chat_id,
        title=title,
        description=_("invoice_description", credits=pack.credits),
        payload=pack.payload,
        currency=CURRENCY,
        prices=[LabeledPrice(label=title, amount=pack.stars)],
        provider_token="",
    )


class RecordPayment(Protocol):
    """A domain's `record_payment` (a pack's, or a plan's with its period bound): the
    outcome and the credits added."""

    async def __call__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        /,
        *,
        user_id: int,
        charge_id: str,
        payload: str,
        stars: int,
    ) -> tuple[Paid, int]: ...


async def record_and_thank(
    message: Message,
    user: User,
    sessions: async_sessionmaker[AsyncSession],
    allowance: Allowance,
    record: RecordPayment,
    thanks: str,
    **values: str,
) -> None:
    """Record the message's successful payment and answer it with `thanks` (given the credits
    added, the balance now and `values`). Only the update that credited it is answered: one
    Telegram repeats credits nothing and was thanked the first time."""
    payment = message.successful_payment
    assert payment is not None
    outcome, amount = await record(
        sessions,
        user_id=user.id,
        charge_id=payment.telegram_payment_charge_id,
        payload=payment.invoice_payload,
        stars=payment.total_amount,
    )
    if outcome != Paid.CREDITED:
        return
    account = await account_of(sessions, user.id, allowance.free_per_day, last=0)
    await message.answer(_(thanks, credits=amount, balance=account.balance.total, **values))


def balance_text(account: Account, free_per_day: int) -> str:
    """Starts with the spendable balance as a number: tools read that first number."""
    balance = account.balance
    lines = [_("balance", balance=balance.total, free=balance.free, paid=balance.paid)]
    if free_per_day > 0:
        lines.append(_("balance_free_daily", free=free_per_day))
    lines.append("")
    lines.append(_("balance_movements"))
    for entry in account.movements:
        lines.append(
            _(
                "balance_line",
                sign="+" if entry.amount > 0 else "−",
                amount=abs(entry.amount),
                reason=_(f"reason_{entry.reason}"),
                when=f"{entry.created_at:%Y-%m-%d %H:%M}",
            )
        )
    if not account.movements:
        lines.append(_("balance_none"))
    return "\n".join(lines)
