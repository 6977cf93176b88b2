"""The prompt helper and styles end to end, through the stand-ins: what fal receives is what
a user would get in their picture, and what the ledger says they paid for it. The helper's LLM
is fal's openrouter/router called synchronously; the stand-in answers it with "A detailed,
high quality picture of: <prompt>"."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from core.domain.catalog import load_catalog
from core.domain.models import LedgerEntry, Reason
from core.infra.db import create_engine
from sandbox.control import FalSandbox, Record, TelegramSandbox, wait_until

HELPER = load_catalog().prompt_helper


def _message_id(record: Record) -> int:
    return int(record["response"]["result"]["message_id"])


def _button(record: Record, text: str) -> str:
    rows: list[list[dict[str, Any]]] = record["params"]["reply_markup"]["inline_keyboard"]
    [data] = [button["callback_data"] for row in rows for button in row if button["text"] == text]
    return data


def _helper_on(telegram: TelegramSandbox, user: int) -> None:
    telegram.send_message(user, "/settings")
    [menu] = telegram.wait_for("sendMessage", chat_id=user)
    data = _button(menu, "✨ Prompt helper: off")
    telegram.press_button(user, _message_id(menu), data)
    telegram.wait_for("editMessageText", chat_id=user)


def _submits(fal: FalSandbox, count: int) -> list[Record]:
    return wait_until(lambda: fal.requests("submit"), count, 30)


def _charges(database_url: str, user: int) -> list[tuple[str, int]]:
    """The user's movements of credits for jobs (the daily allowance left out), in order."""

    async def read() -> list[tuple[str, int]]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    select(LedgerEntry.reason, LedgerEntry.free + LedgerEntry.paid)
                    .where(LedgerEntry.user_id == user, LedgerEntry.reason != Reason.DAILY)
                    .order_by(LedgerEntry.id)
                )
                return [(str(reason), int(amount)) for reason, amount in rows.all()]
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_with_the_helper_on_fal_gets_the_rewritten_prompt_and_the_caption_shows_it(
    telegram: TelegramSandbox, fal: FalSandbox, database_url: str
) -> None:
    user = 5601
    _helper_on(telegram, user)
    telegram.send_message(user, "кот в шляпе")
    [photo] = telegram.wait_for("sendPhoto", chat_id=user, timeout=30)

    [asked] = fal.requests("run")
    assert asked["model_id"] == HELPER.endpoint
    assert asked["body"]["prompt"] == "кот в шляпе"
    assert asked["body"]["model"] == HELPER.llm
    rewritten = "A detailed, high quality picture of: кот в шляпе"
    [submit] = fal.requests("submit")
    assert submit["body"]["prompt"] == rewritten
    assert photo["params"]["caption"].startswith(f"✨ {rewritten}")

    # ↩️ My words: the same again from the user's own words, the LLM not asked again.
    telegram.press_button(user, _message_id(photo), _button(photo, "↩️ My words"))
    _first, again = _submits(fal, 2)
    assert again["body"]["prompt"] == "кот в шляпе"
    telegram.wait_for("sendPhoto", chat_id=user, count=2, timeout=30)
    assert len(fal.requests("run")) == 1

    # 🔁 Regenerate: the same rewritten prompt to the image model, without the LLM or its price.
    telegram.press_button(user, _message_id(photo), _button(photo, "🔁 Regenerate"))
    *_, regenerated = _submits(fal, 3)
    assert regenerated["body"]["prompt"] == rewritten
    *_, last = telegram.wait_for("sendPhoto", chat_id=user, count=3, timeout=30)
    assert last["params"]["caption"].startswith(f"✨ {rewritten}")
    assert len(fal.requests("run")) == 1
    reserves = [amount for reason, amount in _charges(database_url, user)]
    image = -reserves[1]  # ↩️ My words: the picture alone
    assert reserves == [-(image + HELPER.price), -image, -image]


@pytest.mark.parametrize(
    "fault",
    [
        {"on": "run", "status": None, "delay": HELPER.timeout_seconds + 10},
        {"on": "run", "status": 500, "body": {"detail": "Internal server error"}},
    ],
    ids=["slow", "failing"],
)
def test_when_the_helper_is_slow_or_fails_the_users_words_go_and_its_price_back(
    telegram: TelegramSandbox, fal: FalSandbox, database_url: str, fault: dict[str, Any]
) -> None:
    user = 5602 if fault["status"] is None else 5603
    _helper_on(telegram, user)
    fal.fault(**fault, after_handling=True)  # the LLM got the words: the stand-in keeps them
    telegram.send_message(user, "собака на луне")
    [photo] = telegram.wait_for("sendPhoto", chat_id=user, timeout=60)

    [asked] = fal.requests("run")
    assert asked["body"]["prompt"] == "собака на луне"
    [submit] = fal.requests("submit")
    assert submit["body"]["prompt"] == "собака на луне"
    assert photo["params"]["caption"].startswith("собака на луне")
    [(reserved, taken), (refunded, back)] = _charges(database_url, user)
    assert (reserved, refunded, back) == (Reason.RESERVE, Reason.HELPER_REFUND, HELPER.price)
    assert -taken - back == load_catalog().find(submit["model_id"]).cost({})  # type: ignore[union-attr]


def test_a_style_from_the_catalog_changes_what_fal_receives(
    telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    user = 5604
    watercolor = load_catalog().style("watercolor")
    assert watercolor is not None
    telegram.send_message(user, "/styles")
    [offer] = telegram.wait_for("sendMessage", chat_id=user)
    telegram.press_button(user, _message_id(offer), _button(offer, watercolor.title["en"]))
    telegram.wait_for("editMessageText", chat_id=user)

    telegram.send_message(user, "a lighthouse at dawn")
    [submit] = _submits(fal, 1)
    assert submit["body"]["prompt"] == watercolor.render("a lighthouse at dawn")
    assert fal.requests("run") == []
    [photo] = telegram.wait_for("sendPhoto", chat_id=user, timeout=30)
    assert watercolor.title["en"] in photo["params"]["caption"]
