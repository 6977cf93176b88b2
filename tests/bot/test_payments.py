"""Credits in the conversation (tests/bot/conftest.py): /buy sends a Stars invoice, a
pre-checkout query is answered, a payment repeated by Telegram credits once, /balance starts
with the balance, and a prompt that cannot be paid for is refused with the price, the
balance and a 💳 button, making no job."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import launch
from core.domain import catalog as catalog_module
from tests.bot.conftest import Chat


@pytest.fixture
def one_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    text = catalog_module.DEFAULT_PATH.read_text()
    text = (
        text[: text.index("\n[[packs]]")]
        + "\n"
        + '[[packs]]\nid = "only"\ncredits = 20\nstars = 25\n'
    )
    (tmp_path / "catalog.toml").write_text(text)
    monkeypatch.setenv("KADR_CATALOG", str(tmp_path / "catalog.toml"))
    catalog_module.catalog.cache_clear()
    yield
    catalog_module.catalog.cache_clear()


def _first_number(text: str) -> int:
    found = re.search(r"\d+", text)
    assert found is not None, text
    return int(found.group())


async def test_buy_with_several_packs_offers_buttons_whose_tap_sends_a_stars_invoice(
    chat: Chat,
) -> None:
    await chat.say("/buy")
    [offer] = chat.calls("sendMessage")
    buttons = [row[0] for row in offer.reply_markup.inline_keyboard]
    assert [b.text for b in buttons] == ["50 credits · 50 ⭐", "300 credits · 250 ⭐"]
    assert chat.calls("sendInvoice") == []

    await chat.feed(chat.tap(buttons[1].callback_data))
    [invoice] = chat.calls("sendInvoice")
    assert (invoice.chat_id, invoice.currency, invoice.provider_token) == (chat.user_id, "XTR", "")
    assert [(p.amount) for p in invoice.prices] == [250]
    assert invoice.payload == "pack:large:300" and len(invoice.payload.encode()) <= 128
    assert invoice.title == "300 credits"


async def test_buy_with_one_pack_sends_its_invoice_at_once(one_pack: None, chat: Chat) -> None:
    await chat.say("/buy")
    assert chat.calls("sendMessage") == []
    [invoice] = chat.calls("sendInvoice")
    assert (invoice.currency, invoice.payload, [p.amount for p in invoice.prices]) == (
        "XTR",
        "pack:only:20",
        [25],
    )


async def test_pre_checkout_is_answered_ok_for_a_pack_on_sale_and_refused_otherwise(
    chat: Chat,
) -> None:
    await chat.pre_checkout("pack:small:50")
    await chat.pre_checkout("pack:gone:50")
    await chat.pre_checkout("pack:small:50", total_amount=1)
    answers = [(a.ok, a.error_message) for a in chat.calls("answerPreCheckoutQuery")]
    refusal = "This pack is no longer on sale. Please open /buy again."
    assert answers == [(True, None), (False, refusal), (False, refusal)]
    assert "pre_checkout_query" in chat.dispatcher.resolve_used_update_types()


async def test_a_payment_delivered_twice_credits_once(broke: Chat) -> None:
    await broke.pay("stx-1")
    await broke.pay("stx-1")
    assert broke.texts() == ["✅ 50 credits added. Balance: 50."]
    await broke.say("/balance")
    assert _first_number(broke.texts()[-1]) == 50
    assert broke.texts()[-1].startswith("💰 50 credits\nFree: 0 · Bought: 50")


async def test_balance_starts_with_the_spendable_number_and_lists_movements(chat: Chat) -> None:
    await chat.say("/balance")
    assert chat.texts()[-1].startswith("💰 10 credits\n")
    await chat.say("a lighthouse")  # 1 credit (FLUX schnell, one image)
    await chat.say("/balance")
    statement = chat.texts()[-1]
    assert _first_number(statement) == 9
    assert "−1 · job" in statement and "+10 · daily free credits" in statement


async def test_a_prompt_without_credits_is_refused_with_price_balance_and_a_buy_button(
    broke: Chat,
) -> None:
    await broke.say("a lighthouse at dawn")
    [refusal] = broke.calls("sendMessage")
    assert refusal.text.startswith("💳 Not enough credits: this costs 1, you have 0.")
    [[button]] = refusal.reply_markup.inline_keyboard
    assert button.text == "💳 Buy credits"
    assert await broke.job_count() == 0

    await broke.feed(broke.tap(button.callback_data))
    assert broke.texts()[-1].startswith("💳 Choose a pack")

    await broke.pay("stx-2")
    await broke.say("a lighthouse at dawn")
    assert await broke.job_count() == 1


async def test_russian_balance_agrees_with_the_number(chat: Chat) -> None:
    body = chat.message(text="/balance")
    body["message"]["from"]["language_code"] = "ru"
    await chat.feed(body)
    assert chat.texts()[-1].startswith("💰 10 кредитов\nБесплатных: 10 · Купленных: 0")


async def test_a_prompt_that_lost_the_race_for_the_last_credits_turns_its_status_into_the_refusal(
    broke: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two prompts can both pass the check before either reserves; the one whose reservation
    finds the credits gone has already posted its status message, which becomes the refusal."""

    async def passed(*_: object) -> int:
        return 1

    monkeypatch.setattr(launch, "check_credits", passed)
    await broke.say("a lighthouse at dawn")
    [status] = broke.calls("sendMessage")
    assert status.text.startswith("⏳ In the queue…")
    [edit] = broke.calls("editMessageText")
    assert edit.text.startswith("💳 Not enough credits: this costs 1, you have 0.")
    assert edit.reply_markup.inline_keyboard[0][0].text == "💳 Buy credits"
    assert await broke.job_count() == 0
