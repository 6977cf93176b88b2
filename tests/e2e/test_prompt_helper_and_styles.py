"""The prompt helper and styles end to end, through the stand-ins: what fal receives is what
a user would get in their picture. The helper's LLM is fal's openrouter/router called
synchronously; the stand-in answers it with "A detailed, high quality picture of: <prompt>"."""

from __future__ import annotations

from typing import Any

import pytest

from core.domain.catalog import load_catalog
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


def test_with_the_helper_on_fal_gets_the_rewritten_prompt_and_the_caption_shows_it(
    telegram: TelegramSandbox, fal: FalSandbox
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


@pytest.mark.parametrize(
    "fault",
    [
        {"on": "run", "status": None, "delay": HELPER.timeout_seconds + 10},
        {"on": "run", "status": 500, "body": {"detail": "Internal server error"}},
    ],
    ids=["slow", "failing"],
)
def test_when_the_helper_is_slow_or_fails_the_users_words_go(
    telegram: TelegramSandbox, fal: FalSandbox, fault: dict[str, Any]
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
