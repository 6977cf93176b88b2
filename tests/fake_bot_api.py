"""The Bot API faked at the transport, for the in-process tests: an aiogram session that
records each request and answers what is scripted, or else a plain success, through aiogram's
own check of an answer (so Response[...] parsing and Telegram errors are real); and the
updates Telegram posts (`message`), with the one way to post them to a running webhook."""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable
from typing import Any

import httpx
from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.methods import TelegramMethod

from sandbox.stack import TEST_SECRET

#: A scripted answer: an HTTP status and body (checked by aiogram as a real answer would be),
#: or an exception to raise, made from the method it answers.
Scripted = tuple[int, dict[str, Any]] | Callable[[TelegramMethod[Any]], Exception]


class FakeSession(BaseSession):
    """The Bot API at the transport: records each request and answers what is scripted, or
    else a plain success (a Message for sends and edits, True for the rest)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[TelegramMethod[Any]] = []
        self.script: deque[Scripted] = deque()
        self._message_ids = iter(range(1000, 10**6))

    def names(self) -> list[str]:
        return [request.__api_method__ for request in self.requests]

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[Any],
        timeout: int | None = None,  # noqa: ASYNC109
    ) -> Any:
        self.requests.append(method)
        if self.script:
            scripted = self.script.popleft()
            if callable(scripted):
                raise scripted(method)
            status, body = scripted
        else:
            status, body = 200, {"ok": True, "result": self._success(method)}
        return self.check_response(bot, method, status, json.dumps(body)).result

    def _success(self, method: TelegramMethod[Any]) -> Any:
        name = method.__api_method__
        if name == "getMe":
            return {"id": 42, "is_bot": True, "first_name": "kadr", "username": "kadr_bot"}
        if name == "createInvoiceLink":
            return f"https://t.me/$invoice{len(self.requests)}"
        if name.startswith(("send", "edit")) and name != "editUserStarSubscription":
            chat = method.chat_id  # type: ignore[attr-defined]
            return {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": {"id": chat, "type": "private" if chat > 0 else "group", "title": "G"},
                "text": getattr(method, "text", None) or "",
            }
        return True

    async def close(self) -> None:
        pass

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,  # noqa: ASYNC109 (aiogram's signature)
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        yield b""


def message(update_id: int, chat_id: int, text: str = "hi") -> dict[str, Any]:
    """A private chat's text message as Telegram posts it to the webhook."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_700_000_000,
            "chat": {"id": chat_id, "type": "private", "first_name": "Ann"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "Ann"},
            "text": text,
        },
    }


def post_update(api_url: str, update: dict[str, Any]) -> httpx.Response:
    """POST an update to a running kadr api's webhook, as Telegram does (with the secret)."""
    return httpx.post(
        f"{api_url}/webhooks/telegram",
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": TEST_SECRET},
        timeout=10,
    )
