"""Referrals and Stars subscriptions through the real processes and the Telegram stand-in
(the shared stack: its users can pay for any job with free credits, so what referrals and
plans add shows as bought credits in /balance and as ledger rows).

A referral credits both sides once, on the newcomer's first delivered job, even when that
delivery runs twice; a user who was already known, or who follows their own link, credits
nobody. A subscription's first payment and each renewal grant the plan's credits, a
repeated renewal nothing more, and once /subscription's button cancelled it the stand-in
renews it no more."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.domain.catalog import catalog
from core.domain.models import Job, JobStatus, LedgerEntry, Reason
from core.domain.referrals import code_of
from sandbox.control import FalSandbox, Record, TelegramSandbox, wait_until

INVITER, SECOND_INVITER, NEWCOMER, SELFISH = 23101, 23102, 23103, 23104
SUBSCRIBER = 23201


def bot_texts(telegram: TelegramSandbox, chat_id: int) -> list[str]:
    return [r["params"]["text"] for r in telegram.requests("sendMessage", chat_id)]


def ask(telegram: TelegramSandbox, chat_id: int, text: str, starts: str = "") -> Record:
    """Send `text`; the bot's next message (starting with `starts`), once it came."""
    before = len(telegram.requests("sendMessage", chat_id))
    telegram.send_message(chat_id, text)
    sent = wait_until(
        lambda: [
            r
            for r in telegram.requests("sendMessage", chat_id)[before:]
            if r["params"]["text"].startswith(starts)
        ],
        1,
        timeout=20,
    )
    assert sent, bot_texts(telegram, chat_id)
    return sent[0]


def bought(telegram: TelegramSandbox, chat_id: int) -> int:
    text = ask(telegram, chat_id, "/balance", "💰")["params"]["text"]
    return int(re.search(r"Bought: (\d+)", text).group(1))  # type: ignore[union-attr]


async def ledger_rows(db: AsyncEngine, user_id: int, reason: Reason) -> int:
    async with db.connect() as connection:
        count = select(func.count()).select_from(LedgerEntry)
        where = (LedgerEntry.user_id == user_id) & (LedgerEntry.reason == reason)
        return int((await connection.execute(count.where(where))).scalar_one())


async def delivered_jobs(db: AsyncEngine, user_id: int) -> int:
    async with db.connect() as connection:
        count = select(func.count()).select_from(Job)
        where = (Job.user_id == user_id) & (Job.status == JobStatus.DELIVERED)
        return int((await connection.execute(count.where(where))).scalar_one())


async def wait_delivered(db: AsyncEngine, user_id: int, count: int) -> None:
    for _ in range(600):
        if await delivered_jobs(db, user_id) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"user {user_id}: {count} jobs not delivered")


def make_a_picture(telegram: TelegramSandbox, chat_id: int, prompt: str, photos: int) -> None:
    telegram.send_message(chat_id, prompt)
    sent = telegram.wait_for("sendPhoto", chat_id=chat_id, count=photos, timeout=30)
    assert len(sent) >= photos


async def test_a_referral_credits_both_sides_once_and_nobody_else(
    telegram: TelegramSandbox, fal: FalSandbox, db: AsyncEngine
) -> None:
    terms = catalog().referrals
    link = ask(telegram, INVITER, "/invite", "🎁")["params"]["text"]
    assert f"t.me/kadr_bot?start={code_of(INVITER)}" in link
    ask(telegram, SECOND_INVITER, "/invite", "🎁")

    welcome = ask(telegram, NEWCOMER, f"/start {code_of(INVITER)}", "👋")["params"]["text"]
    assert "🎁" in welcome  # the newcomer is told their share comes with the first picture
    again = ask(telegram, NEWCOMER, f"/start {code_of(SECOND_INVITER)}", "👋")
    assert "🎁" not in again["params"]["text"]
    own = ask(telegram, SELFISH, f"/start {code_of(SELFISH)}", "👋")
    assert "🎁" not in own["params"]["text"]
    assert bought(telegram, NEWCOMER) == 0  # nothing on /start

    # Telegram takes the first photo but answers 500: the delivery runs again.
    telegram.fault(method="sendPhoto", chat_id=NEWCOMER, status=500, after_handling=True)
    make_a_picture(telegram, NEWCOMER, "a fox in the snow", photos=1)
    await wait_delivered(db, NEWCOMER, 1)
    assert len(telegram.requests("sendPhoto", NEWCOMER)) == 2
    make_a_picture(telegram, NEWCOMER, "a second fox", photos=2)
    await wait_delivered(db, NEWCOMER, 2)
    make_a_picture(telegram, SELFISH, "a lonely fox", photos=1)
    await wait_delivered(db, SELFISH, 1)

    assert bought(telegram, NEWCOMER) == terms.newcomer_credits
    assert bought(telegram, INVITER) == terms.inviter_credits
    assert bought(telegram, SECOND_INVITER) == 0
    assert bought(telegram, SELFISH) == 0
    for user in (NEWCOMER, INVITER):
        assert await ledger_rows(db, user, Reason.REFERRAL) == 1
    stats = ask(telegram, INVITER, "/invite", "🎁")["params"]["text"]
    assert stats.endswith(f"Joined by your link: 1 · credits earned: {terms.inviter_credits}")


async def test_a_subscription_grants_each_period_once_until_cancelled(
    telegram: TelegramSandbox, db: AsyncEngine
) -> None:
    plan = catalog().plans[0]
    offer = ask(telegram, SUBSCRIBER, "/subscription", "⭐")
    [[button]] = offer["params"]["reply_markup"]["inline_keyboard"]
    [link] = telegram.requests("createInvoiceLink")
    assert link["params"]["subscription_period"] == 2592000

    first = telegram.pay_link(SUBSCRIBER, button["url"])
    assert first["answer"] == {"ok": True, "error_message": None}
    renewals = [telegram.renew(first["charge_id"]) for _ in range(2)]
    last = renewals[-1]["successful_payment"]["update"]
    repeated = {k: v for k, v in last.items() if k != "update_id"}
    [delivery] = telegram.send_update(repeated)["deliveries"]
    assert delivery["status"] == 200

    assert bought(telegram, SUBSCRIBER) == 3 * plan.credits  # after the repeat, in order
    said = [t for t in bot_texts(telegram, SUBSCRIBER) if t.startswith(("✅", "🔄"))]
    assert [t[0] for t in said] == ["✅", "🔄", "🔄"]
    assert await ledger_rows(db, SUBSCRIBER, Reason.SUBSCRIPTION) == 3

    status = ask(telegram, SUBSCRIBER, "/subscription", "⭐")
    [[cancel]] = status["params"]["reply_markup"]["inline_keyboard"]
    telegram.press_button(
        SUBSCRIBER, status["response"]["result"]["message_id"], cancel["callback_data"]
    )
    [edit] = telegram.wait_for("editUserStarSubscription")
    assert edit["params"]["is_canceled"] is True
    with pytest.raises(httpx.HTTPStatusError) as refused:
        telegram.renew(first["charge_id"])
    assert refused.value.response.status_code == 409
    assert bought(telegram, SUBSCRIBER) == 3 * plan.credits
