"""Referrals and Stars subscriptions in the conversation (tests/bot/conftest.py): /invite
gives the user's link and what it brought; /start by a link promises the newcomer their
share only when they are new to the bot; /subscription offers the plans as 30-day
subscription invoice links, then shows the plan and its next renewal with a button that
cancels or re-enables it through editUserStarSubscription; a plan's payments are
acknowledged once per charge, first and renewals alike."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiogram.types import InlineKeyboardMarkup

from core.domain import referrals
from core.domain.catalog import catalog
from tests.bot.conftest import Chat, World, _chat

NEXT_RENEWAL = int(datetime(2027, 1, 6, 12, tzinfo=UTC).timestamp())


def _plan_payment(charge_id: str, *, first: bool, expires: int = NEXT_RENEWAL) -> dict[str, Any]:
    plan = catalog().plans[0]
    paid: dict[str, Any] = {
        "currency": "XTR",
        "total_amount": plan.stars,
        "invoice_payload": plan.payload,
        "telegram_payment_charge_id": charge_id,
        "provider_payment_charge_id": "",
        "subscription_expiration_date": expires,
        "is_recurring": True,
    }
    if first:
        paid["is_first_recurring"] = True
    return paid


def _buttons(markup: InlineKeyboardMarkup | None) -> list[Any]:
    assert markup is not None
    return [button for row in markup.inline_keyboard for button in row]


async def test_invite_gives_the_link_and_what_it_brought(chat: Chat, world: World) -> None:
    await chat.say("/invite")
    [text] = chat.texts()
    assert f"https://t.me/kadr_bot?start={referrals.code_of(chat.user_id)}" in text
    assert text.endswith("Joined by your link: 0 · credits earned: 0")

    newcomer = _chat(world, free=10)
    await newcomer.say(f"/start {referrals.code_of(chat.user_id)}")
    await chat.say("/invite")
    assert chat.texts()[-1].endswith("Joined by your link: 1 · credits earned: 0")


async def test_start_by_a_link_promises_a_share_only_to_a_user_new_to_the_bot(
    chat: Chat, world: World
) -> None:
    await chat.say("/invite")
    code = referrals.code_of(chat.user_id)
    newcomer = _chat(world, free=10)
    await newcomer.say(f"/start {code}")
    [greeting] = newcomer.texts()
    assert greeting.startswith("👋 Hi") and "🎁 You came by a friend's invitation" in greeting

    existing = _chat(world, free=10)
    await existing.say("/help")
    await existing.say(f"/start {code}")
    own = _chat(world, free=10)
    await own.say(f"/start {referrals.code_of(own.user_id)}")
    for greeted in (existing.texts()[-1], own.texts()[-1]):
        assert greeted.startswith("👋 Hi") and "🎁" not in greeted


async def test_subscription_offers_each_plan_as_a_30_day_stars_invoice_link(chat: Chat) -> None:
    await chat.say("/subscription")
    [link] = chat.calls("createInvoiceLink")
    plan = catalog().plans[0]
    assert (link.subscription_period, link.currency, link.payload) == (
        2592000,
        "XTR",
        plan.payload,
    )
    assert [price.amount for price in link.prices] == [plan.stars]
    [offer] = chat.calls("sendMessage")
    [button] = _buttons(offer.reply_markup)
    assert button.url.startswith("https://t.me/$")
    assert button.text == f"{plan.credits} credits / 30 days · {plan.stars} ⭐"


async def test_a_plans_pre_checkout_is_answered_by_its_terms(chat: Chat) -> None:
    plan = catalog().plans[0]
    await chat.pre_checkout(plan.payload, total_amount=plan.stars)
    await chat.pre_checkout(plan.payload, total_amount=1)
    await chat.pre_checkout("plan:gone:5", total_amount=plan.stars)
    answers = [a.ok for a in chat.calls("answerPreCheckoutQuery")]
    assert answers == [True, False, False]


async def test_payments_are_acknowledged_once_and_subscription_cancels_and_re_enables(
    broke: Chat,
) -> None:
    plan = catalog().plans[0]
    await broke.feed(broke.message(successful_payment=_plan_payment("ch-1", first=True)))
    again = broke.message(successful_payment=_plan_payment("ch-1", first=True))
    await broke.feed(again)
    renewal = _plan_payment("ch-2", first=False, expires=NEXT_RENEWAL + 2592000)
    await broke.feed(broke.message(successful_payment=renewal))
    assert broke.texts() == [
        f"✅ Subscribed: {plan.credits} credits added. Next renewal: 2027-01-06. "
        f"Balance: {plan.credits}.",
        f"🔄 Subscription renewed: {plan.credits} credits added. Next renewal: 2027-02-05. "
        f"Balance: {2 * plan.credits}.",
    ]

    await broke.say("/subscription")
    status = broke.calls("sendMessage")[-1]
    assert "Next renewal: 2027-02-05." in status.text
    [cancel] = _buttons(status.reply_markup)
    assert cancel.text == "Cancel renewal"
    await broke.feed(broke.tap(cancel.callback_data))
    [edit] = broke.calls("editUserStarSubscription")
    assert (edit.user_id, edit.telegram_payment_charge_id, edit.is_canceled) == (
        broke.user_id,
        "ch-1",
        True,
    )
    shown = broke.calls("editMessageText")[-1]
    assert "Renewal cancelled: it ends on 2027-02-05." in shown.text
    [resume] = _buttons(shown.reply_markup)
    assert resume.text == "Renew again"
    await broke.feed(broke.tap(resume.callback_data))
    assert [e.is_canceled for e in broke.calls("editUserStarSubscription")] == [True, False]
    assert "Next renewal: 2027-02-05." in broke.calls("editMessageText")[-1].text
    assert time.time() < NEXT_RENEWAL  # the subscription is current while the test runs
