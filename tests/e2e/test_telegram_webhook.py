"""POST /webhooks/telegram as Telegram calls it: real api process, real Redis and PostgreSQL,
the Telegram stand-in recording what the bot sends back."""

from __future__ import annotations

import json

import httpx
import pytest

from sandbox.control import TelegramSandbox
from sandbox.stack import TEST_SECRET, Stack


def start_update(update_id: int, user_id: int, language_code: str = "en") -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 1767225600,
            "chat": {"id": user_id, "type": "private", "first_name": "Ann"},
            "from": {
                "id": user_id,
                "is_bot": False,
                "first_name": "Ann",
                "language_code": language_code,
            },
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }


def post(stack: Stack, body: bytes | dict, secret: str | None = TEST_SECRET) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    kwargs = {"json": body} if isinstance(body, dict) else {"content": body}
    return httpx.post(f"{stack.api_url}/webhooks/telegram", headers=headers, timeout=10, **kwargs)


def test_start_greets_in_the_users_language(telegram: TelegramSandbox) -> None:
    telegram.send_message(1001, "/start", language_code="ru", first_name="Аня")
    telegram.send_message(1002, "/start", language_code="de", first_name="Max")
    [ru] = telegram.wait_for("sendMessage", chat_id=1001)
    [en] = telegram.wait_for("sendMessage", chat_id=1002)
    assert ru["params"]["text"].startswith("👋 Привет, Аня!")
    assert en["params"]["text"].startswith("👋 Hi, Max!")


def test_a_redelivered_update_is_handled_once(stack: Stack, telegram: TelegramSandbox) -> None:
    first = post(stack, start_update(7001, 1003))
    again = post(stack, start_update(7001, 1003))
    assert (first.status_code, first.json()) == (200, {"status": "accepted"})
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    telegram.send_message(1003, "/help")  # a later update, to know the first one is done
    sent = telegram.wait_for("sendMessage", chat_id=1003, count=2)
    assert [r["params"]["text"].split()[1] for r in sent] == ["Hi,", "I"]


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", TEST_SECRET + "x"])
def test_wrong_or_missing_secret_is_401(
    stack: Stack, telegram: TelegramSandbox, secret: str | None
) -> None:
    update_id = 7100 + len(secret or "") + (secret is None)
    response = post(stack, start_update(update_id, 1004), secret=secret)
    assert response.status_code == 401
    assert post(stack, start_update(update_id, 1004)).json() == {"status": "accepted"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"garbage", "body is not JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (b'{"message": {}}', "update_id must be an integer"),
        (b'{"update_id": "5", "message": {}}', "update_id must be an integer"),
    ],
)
def test_garbage_is_400_with_a_reason(stack: Stack, body: bytes, reason: str) -> None:
    response = post(stack, body)
    assert response.status_code == 400
    assert reason in response.json()["detail"]


def test_a_body_over_one_megabyte_is_413(stack: Stack) -> None:
    huge = b'{"update_id": 1, "padding": "' + b"x" * (1024 * 1024) + b'"}'
    assert post(stack, huge).status_code == 413


@pytest.mark.parametrize(
    "update",
    [
        {
            "edited_message": {
                "message_id": 1,
                "date": 1,
                "edit_date": 2,
                "text": "/start",
                "chat": {"id": 1005, "type": "private"},
                "from": {"id": 1005, "is_bot": False, "first_name": "E"},
            }
        },
        {
            "channel_post": {
                "message_id": 1,
                "date": 1,
                "text": "/start",
                "chat": {"id": -1001, "type": "channel", "title": "c"},
            }
        },
        {
            "my_chat_member": {
                "chat": {"id": 1005, "type": "private"},
                "from": {"id": 1005, "is_bot": False, "first_name": "E"},
                "date": 1,
                "old_chat_member": {
                    "status": "member",
                    "user": {"id": 1, "is_bot": True, "first_name": "kadr"},
                },
                "new_chat_member": {
                    "status": "kicked",
                    "until_date": 0,
                    "user": {"id": 1, "is_bot": True, "first_name": "kadr"},
                },
            }
        },
        {
            "message_reaction": {
                "chat": {"id": 1005, "type": "private"},
                "message_id": 1,
                "date": 1,
                "old_reaction": [],
                "new_reaction": [{"type": "emoji", "emoji": "👍"}],
            }
        },
        {"some_future_update": {"x": 1}},
    ],
    ids=["edited_message", "channel_post", "my_chat_member", "message_reaction", "unknown"],
)
def test_other_update_kinds_are_ignored_quietly(
    stack: Stack, telegram: TelegramSandbox, update: dict
) -> None:
    update_id = 7200 + len(json.dumps(update))
    response = post(stack, {"update_id": update_id, **update})
    assert (response.status_code, response.json()) == (200, {"status": "accepted"})
    telegram.send_message(1006, "/help")
    telegram.wait_for("sendMessage", chat_id=1006)
    assert telegram.sent(chat_id=1005) == []
    assert telegram.sent(chat_id=-1001) == []


def test_a_reply_telegram_failed_is_sent_again_in_order(
    stack: Stack, telegram: TelegramSandbox
) -> None:
    telegram.fault(
        method="sendMessage", chat_id=1007, status=500, times=2, description="Internal Server Error"
    )
    result = telegram.send_message(1007, "/start")
    assert [d["status"] for d in result["deliveries"]] == [200]
    telegram.send_message(1007, "/help")
    greeting, help_ = telegram.wait_for("sendMessage", chat_id=1007, count=2)
    assert greeting["params"]["text"].startswith("👋 Hi")
    assert help_["params"]["text"].startswith("<b>What I can do")


def test_an_update_aiogram_cannot_read_is_kept_as_a_dead_letter(
    stack: Stack, telegram: TelegramSandbox
) -> None:
    body = {"update_id": 7300, "message": {"text": 3, "chat": {"id": 1008, "type": "private"}}}
    assert post(stack, body).json() == {"status": "accepted"}
    telegram.send_message(1008, "/help")  # the same chat, so it is handled after the bad one
    telegram.wait_for("sendMessage", chat_id=1008)
    report = stack.run_kadr("inbox")
    [line] = [line for line in report.splitlines() if "update 7300" in line]
    assert "not a Telegram update" in line and "tries 1" in line
