"""/gallery and the inline button's way into the chat, in process (tests/bot/conftest.py).
What inline mode lists and the Mini App itself run through a deployment
(tests/e2e/test_inline.py, tests/api/test_mini_app.py, tests/e2e/test_demo_browser.py)."""

from __future__ import annotations

from bot.routers.inline import prompt_of, prompt_parameter
from tests.bot.conftest import Chat


async def test_gallery_gives_a_button_that_opens_the_mini_app(chat: Chat) -> None:
    await chat.say("/gallery")
    [answer] = chat.calls("sendMessage")
    [[button]] = answer.reply_markup.inline_keyboard
    assert button.text == "🖼 Open the gallery"
    assert button.web_app is not None and button.web_app.url.endswith("/app/")


async def test_gallery_in_a_group_points_to_the_private_chat(chat: Chat) -> None:
    group = chat.in_group(-100777)
    await group.say("/gallery")
    [answer] = group.calls("sendMessage")
    assert answer.reply_markup is None
    assert "private chat" in answer.text


async def test_the_start_link_offers_its_prompt_on_a_button(chat: Chat) -> None:
    await chat.say(f"/start {prompt_parameter('a fox in the snow')}")
    [offer] = chat.calls("sendMessage")
    assert offer.reply_markup.keyboard[0][0].text == "a fox in the snow"
    assert "a fox in the snow" in offer.text
    assert await chat.job_count() == 0


async def test_a_start_link_without_a_readable_prompt_says_so(chat: Chat) -> None:
    await chat.say("/start p_%%%")
    assert chat.texts() == [
        "That link carried no prompt I can read. Just write what you want to see."
    ]


def test_a_long_prompt_is_cut_to_fit_a_start_parameter_never_mid_letter() -> None:
    prompt = "лиса в снегу на закате, акварель, мягкий свет"
    parameter = prompt_parameter(prompt)
    assert len(parameter) <= 64
    carried = prompt_of(parameter)
    assert carried is not None and len(carried) > 10 and prompt.startswith(carried)
