"""Stars subscriptions: /subscription (the plans as invoice links, or the user's plan, its
next renewal and a button that cancels or re-enables it), and the plan's pre-checkout
answer and payments, first and renewals. The rules are in `core/domain/subscriptions.py`.

Placed before the payments router: a plan's pre-checkout query and payments are taken
here (their payload starts with "plan:"), a pack's go on to `bot/routers/payments.py`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import partial

from aiogram import Bot, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, Filter
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    LabeledPrice,
    Message,
    PreCheckoutQuery,
)
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.credit_messages import record_and_thank
from bot.i18n import _
from core.domain import subscriptions
from core.domain.catalog import Plan, catalog
from core.domain.credits import Allowance
from core.domain.models import Subscription, User
from core.domain.payments import CURRENCY

log = logging.getLogger(__name__)

router = Router(name="subscriptions")

PLAN_PAYLOAD = "plan:"


class PlanPayment(Filter):
    """A plan's pre-checkout query or payment (a coroutine: see bot/filters.py)."""

    async def __call__(self, event: Message | PreCheckoutQuery) -> bool:
        if isinstance(event, PreCheckoutQuery):
            return event.invoice_payload.startswith(PLAN_PAYLOAD)
        paid = event.successful_payment
        return paid is not None and paid.invoice_payload.startswith(PLAN_PAYLOAD)


class RenewalButton(CallbackData, prefix="sub"):
    """Cancel (`cancel` true) or re-enable the renewal of the user's plan `plan_id`."""

    plan_id: str
    cancel: bool


def _day(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d}"


async def _invoice_link(bot: Bot, plan: Plan) -> str:
    """A Stars invoice link that Telegram renews every 30 days until cancelled."""
    title = _("subscription_title", credits=plan.credits)
    return await bot.create_invoice_link(
        title=title,
        description=_("subscription_description", credits=plan.credits),
        payload=plan.payload,
        currency=CURRENCY,
        prices=[LabeledPrice(label=title, amount=plan.stars)],
        subscription_period=subscriptions.PERIOD_SECONDS,
    )


async def _offer(bot: Bot) -> tuple[str, InlineKeyboardMarkup | None]:
    plans = catalog().plans
    if not plans:
        return _("subscription_none_offered"), None
    builder = InlineKeyboardBuilder()
    for plan in plans:
        label = _("subscription_button", credits=plan.credits, stars=plan.stars)
        builder.button(text=label, url=await _invoice_link(bot, plan))
    builder.adjust(1)
    return _("subscription_offer"), builder.as_markup()


def _status(subscription: Subscription) -> tuple[str, InlineKeyboardMarkup]:
    """The plan, when the paid period ends or renews, and the button that flips it."""
    cancelled = subscription.cancelled_at is not None
    text = _(
        "subscription_cancelled" if cancelled else "subscription_active",
        plan=subscription.plan_id,
        credits=subscription.credits,
        stars=subscription.stars,
        date=_day(subscription.expires_at),
    )
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("subscription_resume" if cancelled else "subscription_cancel"),
        callback_data=RenewalButton(plan_id=subscription.plan_id, cancel=not cancelled),
    )
    return text, builder.as_markup()


@router.message(Command("subscription"))
async def subscription(
    message: Message, bot: Bot, user: User, sessions: async_sessionmaker[AsyncSession]
) -> None:
    held = await subscriptions.current(sessions, user.id)
    if not held:
        text, keyboard = await _offer(bot)
        await message.answer(text, reply_markup=keyboard)
        return
    for one in held:
        text, markup = _status(one)
        await message.answer(text, reply_markup=markup)


@router.callback_query(RenewalButton.filter())
async def on_renewal(
    query: CallbackQuery,
    callback_data: RenewalButton,
    bot: Bot,
    user: User,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    held = await subscriptions.find(sessions, user.id, callback_data.plan_id)
    if held is None:
        await query.answer(_("subscription_unknown"), show_alert=True)
        return
    try:
        await bot.edit_user_star_subscription(
            user_id=user.id,
            telegram_payment_charge_id=held.charge_id,
            is_canceled=callback_data.cancel,
        )
    except TelegramBadRequest as exc:
        log.warning("editUserStarSubscription for %s refused: %s", user.id, exc.message)
        await query.answer(_("subscription_edit_failed"), show_alert=True)
        return
    await subscriptions.set_cancelled(sessions, user.id, held.plan_id, callback_data.cancel)
    await query.answer()
    updated = await subscriptions.find(sessions, user.id, held.plan_id)
    if updated is not None and query.message is not None:
        text, markup = _status(updated)
        await bot.edit_message_text(
            text,
            chat_id=query.message.chat.id,
            message_id=query.message.message_id,
            reply_markup=markup,
        )


@router.pre_checkout_query(PlanPayment())
async def pre_checkout(query: PreCheckoutQuery) -> None:
    if subscriptions.checkout_plan(query.invoice_payload, query.currency, query.total_amount):
        await query.answer(ok=True)
    else:
        await query.answer(ok=False, error_message=_("plan_unknown"))


@router.message(PlanPayment())
async def paid(
    message: Message,
    user: User,
    sessions: async_sessionmaker[AsyncSession],
    allowance: Allowance,
) -> None:
    payment = message.successful_payment
    assert payment is not None
    ends = payment.subscription_expiration_date
    expires_at = datetime.fromtimestamp(ends, UTC) if ends else None
    first = bool(payment.is_first_recurring)
    record = partial(subscriptions.record_payment, expires_at=expires_at, first=first)
    thanks = "subscription_started" if first else "subscription_renewed"
    date = _day(expires_at) if expires_at else "—"
    await record_and_thank(message, user, sessions, allowance, record, thanks, date=date)
