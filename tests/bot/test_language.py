"""/language in process (tests/bot/conftest.py): buttons, the stored choice, and replies in
the chosen language afterwards; a first contact stores the user's language. The same through
a whole deployment is tests/e2e/test_language.py."""

from __future__ import annotations

from core.domain.models import User
from tests.bot.conftest import Chat, World


async def test_choosing_a_language_changes_the_replies(world: World, chat: Chat) -> None:
    await chat.say("/language")
    [prompt] = chat.calls("sendMessage")
    buttons = prompt.reply_markup.inline_keyboard[0]
    assert [b.text for b in buttons] == ["🇬🇧 English", "🇷🇺 Русский"]
    russian = next(b for b in buttons if "Русский" in b.text)

    await chat.feed(chat.tap(russian.callback_data))
    [edit] = chat.calls("editMessageText")
    assert edit.text == "✅ Язык: русский"
    assert chat.calls("answerCallbackQuery")
    async with world.sessions() as session:
        user = await session.get(User, chat.user_id)
    assert user is not None and user.language == "ru"

    await chat.say("/help")
    assert chat.texts()[-1].startswith("<b>Что я умею")


async def test_first_contact_creates_the_user(world: World, chat: Chat) -> None:
    sender = {
        "id": chat.user_id,
        "is_bot": False,
        "first_name": "Аня",
        "username": "anya",
        "language_code": "ru-RU",
    }
    await chat.say("/start", **{"from": sender})
    assert chat.texts()
    async with world.sessions() as session:
        user = await session.get(User, chat.user_id)
    assert user is not None
    assert (user.language, user.username, user.first_name, user.banned) == (
        "ru",
        "anya",
        "Аня",
        False,
    )
