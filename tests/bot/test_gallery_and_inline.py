"""/gallery, the inline button's way into the chat and the kind inline mode offers each file
as, in process (tests/bot/conftest.py). The rest of what inline mode lists and the Mini App
itself run through a deployment (tests/e2e/test_inline.py, tests/api/test_mini_app.py,
tests/e2e/test_demo_browser.py)."""

from __future__ import annotations

from typing import Any

from bot.routers.inline import prompt_of, prompt_parameter
from core.domain.users import touch_user
from core.jobs import lifecycle
from tests.bot.conftest import Chat
from tests.builders import a_job


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


async def delivered(chat: Chat, prompt: str, telegram: dict[str, Any]) -> str:
    """A result of the chat's user delivered with what Telegram gave (`telegram`); its id."""
    async with chat.sessions.begin() as session:
        await touch_user(
            session, user_id=chat.user_id, username=None, first_name="Ann", language_code="en"
        )
    job = a_job(chat.user_id, prompt=prompt)
    assert await lifecycle.accept(chat.sessions, job)
    result = {"images": [{"url": f"https://v3.fal.media/files/{job.id}.png"}]}
    assert await lifecycle.mark_completed(chat.sessions, job.id, result)
    assert await lifecycle.mark_delivered(chat.sessions, job, {**result, **telegram})
    return job.id


async def test_inline_mode_offers_each_file_as_the_kind_it_was_delivered_as(chat: Chat) -> None:
    """The kinds kept at delivery decide, even for file ids that say nothing of their kind
    (Telegram calls them opaque); a result delivered before kinds were kept is read from its
    id, and one whose id cannot be read is left out rather than guessed."""
    older = await delivered(chat, "an old fox", {"telegram_file_ids": ["AgACAgIAAxkBAAnope"]})
    await delivered(chat, "unreadable", {"telegram_file_ids": ["opaque-old"]})
    newer = await delivered(
        chat,
        "a fox",
        {"telegram_file_ids": ["opaque-1", "opaque-2"], "telegram_file_kinds": ["video"] * 2},
    )
    query = {"id": "iq1", "from": {"id": chat.user_id, "is_bot": False, "first_name": "Ann"}}
    await chat.feed({"update_id": 9_000_001, "inline_query": {**query, "query": "", "offset": ""}})
    [answer] = chat.calls("answerInlineQuery")
    kinds = [(result, result.type.value) for result in answer.results]
    offered = {r.id: (kind, getattr(r, f"{kind}_file_id")) for r, kind in kinds}
    assert offered == {
        f"{newer}-0": ("video", "opaque-1"),
        f"{newer}-1": ("video", "opaque-2"),
        f"{older}-0": ("photo", "AgACAgIAAxkBAAnope"),
    }
