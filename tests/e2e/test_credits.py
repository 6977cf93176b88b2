"""Credits through the real processes and the stand-ins, on a stack of its own with no
daily allowance: a prompt without credits is refused and never reaches fal; /buy, the
invoice, the pre-checkout answer and the payment make the next prompt a picture; the same
payment sent again changes nothing; jobs that fal refuses give their credits back."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from core.domain.catalog import load_catalog
from core.domain.models import Job
from core.infra.db import create_engine
from sandbox.control import FalSandbox, Record, TelegramSandbox, wait_until
from sandbox.redis_server import PrivateRedis
from sandbox.stack import Stack
from tests.conftest import deployment, fast_catalog

USER = 8801
STACK = "credits_stack"  # what `telegram` and `fal` control (tests/conftest.py)


@pytest.fixture(scope="module")
def credits_stack(
    tmp_path_factory: pytest.TempPathFactory, own_database_url: str, own_redis: PrivateRedis
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("credits")
    env = {
        "FREE_CREDITS_PER_DAY": "0",
        "KADR_CATALOG": str(fast_catalog(workdir / "catalog.toml")),
    }
    with deployment(workdir, own_database_url, own_redis.url, env, "--no-fetch-urls") as stack:
        yield stack


def texts(telegram: TelegramSandbox, chat_id: int) -> list[str]:
    """Every text the bot sent or edited into the chat, in order."""
    return [r["params"]["text"] for r in telegram.sent(chat_id) if "text" in r["params"]]


def messages(telegram: TelegramSandbox, chat_id: int) -> int:
    return len(telegram.requests("sendMessage", chat_id))


def reply(telegram: TelegramSandbox, chat_id: int, count: int) -> str:
    """The chat's `count`-th message from the bot, once it came."""
    sent = telegram.wait_for("sendMessage", chat_id=chat_id, count=count)
    assert len(sent) >= count, [r["params"]["text"] for r in sent]
    return str(sent[count - 1]["params"]["text"])


def balance(telegram: TelegramSandbox, chat_id: int, count: int) -> int:
    """Ask /balance; `count`: the number the answer will have among the chat's messages."""
    telegram.send_message(chat_id, "/balance")
    text = reply(telegram, chat_id, count)
    assert text.startswith("💰"), text
    return int(re.search(r"\d+", text).group())  # type: ignore[union-attr]


def test_no_credits_then_a_purchase_then_a_picture(
    telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    telegram.send_message(USER, "a lighthouse at dawn")
    assert reply(telegram, USER, 1).startswith("💳 Not enough credits: this costs 1, you have 0.")

    telegram.send_message(USER, "/buy")
    offer = telegram.wait_for("sendMessage", chat_id=USER, count=2)[1]
    first_pack = offer["params"]["reply_markup"]["inline_keyboard"][0][0]
    telegram.press_button(
        USER, offer["response"]["result"]["message_id"], first_pack["callback_data"]
    )
    [invoice] = telegram.wait_for("sendInvoice", chat_id=USER)
    assert (invoice["params"]["currency"], invoice["params"].get("provider_token", "")) == (
        "XTR",
        "",
    )

    paid = telegram.pay(USER, invoice["response"]["result"]["message_id"])
    assert paid["answer"] == {"ok": True, "error_message": None}
    assert reply(telegram, USER, 3) == "✅ 50 credits added. Balance: 50."
    assert balance(telegram, USER, 4) == 50

    again = {k: v for k, v in paid["successful_payment"]["update"].items() if k != "update_id"}
    [delivery] = telegram.send_update(again)["deliveries"]
    assert delivery["status"] == 200
    assert balance(telegram, USER, 5) == 50  # handled in order: after the repeated payment

    telegram.send_message(USER, "a lighthouse at dawn")
    [photo] = telegram.wait_for("sendPhoto", chat_id=USER, timeout=30)
    assert photo["params"]["caption"].startswith("a lighthouse at dawn")
    assert len(fal.requests("submit")) == 1  # the refused prompt never reached fal
    statuses = 6  # the job's status message is the chat's 6th
    assert balance(telegram, USER, statuses + 1) == 49


def test_jobs_that_fal_refuses_leave_the_balance_as_it_was(
    telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    user = USER + 1
    telegram.send_message(user, "/buy")
    offer = telegram.wait_for("sendMessage", chat_id=user)[0]
    pack = offer["params"]["reply_markup"]["inline_keyboard"][0][0]
    telegram.press_button(user, offer["response"]["result"]["message_id"], pack["callback_data"])
    [invoice] = telegram.wait_for("sendInvoice", chat_id=user)
    telegram.pay(user, invoice["response"]["result"]["message_id"])
    assert balance(telegram, user, 3) == 50

    submits = len(fal.requests("submit"))
    fal.fault(on="submit", times=1, status=422)
    telegram.send_message(user, "a refused lantern")
    failure = wait_until(
        lambda: [t for t in texts(telegram, user) if t.startswith("⚠️")], 1, timeout=30
    )
    assert failure, texts(telegram, user)
    telegram.send_message(user, "something [content_policy]")
    refused = wait_until(
        lambda: [t for t in texts(telegram, user) if t.startswith("🚫")], 1, timeout=30
    )
    assert refused, texts(telegram, user)
    assert len(fal.requests("submit")) == submits + 2
    assert balance(telegram, user, messages(telegram, user) + 1) == 50


def buy_a_pack(telegram: TelegramSandbox, user: int) -> int:
    """The user buys the first pack (/buy, its button, the invoice, paid); their balance."""
    telegram.send_message(user, "/buy")
    offer = telegram.wait_for("sendMessage", chat_id=user)[0]
    pack = offer["params"]["reply_markup"]["inline_keyboard"][0][0]
    telegram.press_button(user, offer["response"]["result"]["message_id"], pack["callback_data"])
    [invoice] = telegram.wait_for("sendInvoice", chat_id=user)
    paid = telegram.pay(user, invoice["response"]["result"]["message_id"])
    assert paid["answer"] == {"ok": True, "error_message": None}
    assert reply(telegram, user, 2).startswith("✅")
    return balance(telegram, user, 3)


def status_message(telegram: TelegramSandbox, user: int) -> Record:
    """The job's status message (the one with the Cancel button)."""

    def found() -> list[Record]:
        return [
            r
            for r in telegram.requests("sendMessage", user)
            if r["status"] == 200
            and r["params"]["text"].startswith("⏳")
            and "reply_markup" in r["params"]
        ]

    [status] = wait_until(found, 1, timeout=20)
    return status


def press_cancel(telegram: TelegramSandbox, user: int) -> None:
    status = status_message(telegram, user)
    cancel = status["params"]["reply_markup"]["inline_keyboard"][0][0]
    telegram.press_button(user, status["response"]["result"]["message_id"], cancel["callback_data"])


def test_a_job_cancelled_while_queued_at_fal_leaves_the_balance_as_it_was(
    telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    """fal runs one request at a time here, and another user's holds it: this job waits in
    fal's queue, where a cancel removes it. Nothing ran, nothing is charged."""
    user, other = USER + 2, USER + 12
    before = buy_a_pack(telegram, user)
    buy_a_pack(telegram, other)
    submits = len(fal.requests("submit"))
    fal.configure(latency={"default": 6.0}, max_concurrency=1)
    try:
        telegram.send_message(other, "a comet that holds fal")
        wait_until(lambda: fal.requests("submit"), submits + 1, timeout=20)
        telegram.send_message(user, "a slow comet")
        wait_until(lambda: fal.requests("submit"), submits + 2, timeout=20)
        press_cancel(telegram, user)
        told = wait_until(
            lambda: [t for t in texts(telegram, user) if t.startswith("✖ Cancelled before")],
            1,
            timeout=20,
        )
        assert told, texts(telegram, user)
        assert any(t.startswith("✖ Stopping it") for t in texts(telegram, user))
        telegram.wait_for("sendPhoto", chat_id=other, timeout=30)
    finally:
        fal.configure(latency={"default": 0.05}, max_concurrency=None)
    assert telegram.requests("sendPhoto", user) == []
    assert balance(telegram, user, messages(telegram, user) + 1) == before


def test_a_video_cancelled_after_fal_began_is_delivered_and_charged_once(
    credits_stack: Stack, telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    """fal's cancel is only a signal to a running model, which finishes (and is billed):
    the user gets the video, charged once, instead of a free video for every early cancel."""
    user = USER + 5
    before = buy_a_pack(telegram, user)
    submits = len(fal.requests("submit"))
    fal.configure(latency={"default": 5.0})
    try:
        telegram.send_message(user, "/video a slow wave")
        wait_until(lambda: fal.requests("submit"), submits + 1, timeout=20)
        press_cancel(telegram, user)
        [cancel] = fal.wait_for("cancel")[-1:]
        assert cancel["status"] == 202
        [video] = telegram.wait_for("sendVideo", chat_id=user, timeout=40)
    finally:
        fal.configure(latency={"default": 0.05})
    assert any(t.startswith("✖ Stopping it") for t in texts(telegram, user))
    [submit] = fal.requests("submit")[submits:]
    model = load_catalog(Path(credits_stack.env()["KADR_CATALOG"])).find(submit["model_id"])
    assert model is not None and model.mode == "text_to_video"
    assert video["params"]["video"] == fal.job(submit["request_id"])["output"]["video"]["url"]
    wait_until(lambda: telegram.requests("deleteMessage", user), 1, timeout=10)
    assert before - balance(telegram, user, messages(telegram, user) + 1) == model.cost({})


async def undeliverable_jobs(database_url: str, user_id: int) -> list[Job]:
    """The user's jobs failed as undeliverable, polled until there is one (30 s at most).
    The failure and its refund are one commit: once a job shows here, its credits are back."""
    engine = create_engine(database_url)
    query = select(Job).where(Job.user_id == user_id, Job.error == "undeliverable")
    try:
        for _ in range(300):
            async with engine.connect() as connection:
                found = list((await connection.execute(query)).all())
            if found:
                return found  # type: ignore[return-value]
            await asyncio.sleep(0.1)
        return []
    finally:
        await engine.dispose()


async def test_a_job_whose_user_blocked_the_bot_leaves_the_balance_as_it_was(
    own_database_url: str, telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    user = USER + 3
    before = buy_a_pack(telegram, user)
    assert before == 50
    fal.configure(latency={"default": 3.0})
    try:
        telegram.send_message(user, "a fox that was never seen")
        status_message(telegram, user)
        telegram.block(user)  # after the status message, before the picture
        failed = await undeliverable_jobs(own_database_url, user)
        assert failed, telegram.requests("sendPhoto", user)
    finally:
        fal.configure(latency={"default": 0.05})
        telegram._call("POST", f"/users/{user}/unblock")
    assert [r["status"] for r in telegram.requests("sendPhoto", user)] == [403]
    assert balance(telegram, user, messages(telegram, user) + 1) == before


def test_a_delivered_job_costs_exactly_its_price(
    credits_stack: Stack, telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    user = USER + 4
    before = buy_a_pack(telegram, user)
    submits = len(fal.requests("submit"))
    telegram.send_message(user, "a priced lighthouse")
    [photo] = telegram.wait_for("sendPhoto", chat_id=user, timeout=30)
    assert photo["params"]["caption"].startswith("a priced lighthouse")
    [submit] = fal.requests("submit")[submits:]
    model = load_catalog(Path(credits_stack.env()["KADR_CATALOG"])).find(submit["model_id"])
    assert model is not None
    wait_until(lambda: telegram.requests("deleteMessage", user), 1, timeout=10)
    after = balance(telegram, user, messages(telegram, user) + 1)
    assert model.cost({}) >= 1
    assert before - after == model.cost({})
