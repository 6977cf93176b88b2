"""/language: buttons, the stored choice, and replies in the chosen language afterwards."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.domain.models import User
from sandbox.control import TelegramSandbox


async def test_choosing_a_language_changes_the_replies(
    telegram: TelegramSandbox, db: AsyncEngine
) -> None:
    telegram.send_message(2001, "/language", language_code="en")
    [prompt] = telegram.wait_for("sendMessage", chat_id=2001)
    buttons = prompt["params"]["reply_markup"]["inline_keyboard"][0]
    assert [b["text"] for b in buttons] == ["🇬🇧 English", "🇷🇺 Русский"]
    russian = next(b for b in buttons if "Русский" in b["text"])

    message_id = prompt["response"]["result"]["message_id"]
    telegram.press_button(2001, message_id, russian["callback_data"])
    [edit] = telegram.wait_for("editMessageText", chat_id=2001)
    assert edit["params"]["text"] == "✅ Язык: русский"
    assert telegram.wait_for("answerCallbackQuery")

    async with db.connect() as connection:
        language = await connection.scalar(select(User.language).where(User.id == 2001))
    assert language == "ru"

    telegram.send_message(2001, "/help", language_code="en")
    sent = telegram.wait_for("sendMessage", chat_id=2001, count=2)
    assert sent[-1]["params"]["text"].startswith("<b>Что я умею")


async def test_first_contact_creates_the_user(telegram: TelegramSandbox, db: AsyncEngine) -> None:
    telegram.send_message(2002, "/start", language_code="ru-RU", username="anya", first_name="Аня")
    telegram.wait_for("sendMessage", chat_id=2002)
    async with db.connect() as connection:
        row = (await connection.execute(select(User).where(User.id == 2002))).one()
    assert (row.language, row.username, row.first_name, row.banned) == ("ru", "anya", "Аня", False)
