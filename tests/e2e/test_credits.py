"""Credits through the real processes and the stand-ins, on a stack of its own with no
daily allowance: a prompt without credits is refused and never reaches fal; /buy, the
invoice, the pre-checkout answer and the payment make the next prompt a picture; the same
payment sent again changes nothing; jobs that fal refuses give their credits back."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from sandbox.control import FalSandbox, TelegramSandbox, stays_empty, wait_until
from sandbox.redis_server import PrivateRedis
from sandbox.stack import Stack
from tests.conftest import fast_catalog

USER = 8801


@pytest.fixture(scope="module")
def credits_stack(
    tmp_path_factory: pytest.TempPathFactory, own_database_url: str, own_redis: PrivateRedis
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("credits")
    env = {
        "FREE_CREDITS_PER_DAY": "0",
        "KADR_CATALOG": str(fast_catalog(workdir / "catalog.toml")),
        "WORKER_METRICS_PORT": "0",
    }
    stack = Stack(workdir, own_database_url, own_redis.url, extra_env=env)
    try:
        stack.start_deployment("--no-fetch-urls")
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def telegram(credits_stack: Stack) -> Iterator[TelegramSandbox]:
    sandbox = TelegramSandbox(credits_stack.telegram_url)
    yield sandbox
    sandbox.close()


@pytest.fixture(scope="module")
def fal(credits_stack: Stack) -> Iterator[FalSandbox]:
    sandbox = FalSandbox(credits_stack.fal_url)
    yield sandbox
    sandbox.close()


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
    assert stays_empty(lambda: fal.requests("submit"), 2.0) == []

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
    assert len(fal.requests("submit")) == 1
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
