"""Clients for the stand-ins' control APIs (`/_sandbox/...`), used by tests, demo and bench.

Handlers run after the webhook has answered, so "what did the bot send" is read by waiting
until the stand-in has recorded it, bounded by a timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

Record = dict[str, Any]
T = TypeVar("T")


def wait_until(fetch: Callable[[], list[T]], count: int, timeout: float) -> list[T]:
    """Poll `fetch` until it returns at least `count` records or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        found = fetch()
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def stays_empty(fetch: Callable[[], list[Record]], seconds: float) -> list[Record]:
    """Poll `fetch` for `seconds`: the first records it shows, or [] if none came. For
    asserting that something does not happen (a wait for zero records returns at once)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = fetch()
        if found:
            return found
        time.sleep(0.1)
    return fetch()


class _Control:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"/_sandbox{path}", **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def reset(self) -> None:
        self._call("POST", "/reset")

    def close(self) -> None:
        self.http.close()


class TelegramSandbox(_Control):
    def stars(self, balance: float | None = None) -> Record:
        """The bot's pretend Stars balance and paid broadcasts; sets the balance if given."""
        if balance is None:
            return self._call("GET", "/stars")  # type: ignore[no-any-return]
        return self._call("POST", "/stars", json={"balance": balance})  # type: ignore[no-any-return]

    def requests(self, method: str | None = None, chat_id: int | None = None) -> list[Record]:
        params = {k: v for k, v in {"method": method, "chat_id": chat_id}.items() if v is not None}
        return self._call("GET", "/requests", params=params)  # type: ignore[no-any-return]

    def sent(self, chat_id: int | None = None) -> list[Record]:
        """Successful message-sending calls (those a user would see), in order."""
        return [
            r
            for r in self.requests(chat_id=chat_id)
            if r["status"] == 200
            and r["method"].startswith(("send", "edit", "delete"))
            and r["method"] != "sendChatAction"
        ]

    def wait_for(
        self, method: str, *, chat_id: int | None = None, count: int = 1, timeout: float = 20
    ) -> list[Record]:
        return wait_until(
            lambda: [r for r in self.requests(method, chat_id) if r["status"] == 200],
            count,
            timeout,
        )

    def know(self, messages: list[dict[str, Any]]) -> None:
        """Files messages the caller posts to the bot itself (the stand-in's `/messages`)."""
        self._call("POST", "/messages", json={"messages": messages})

    def send_message(self, user_id: int, text: str, **fields: Any) -> Record:
        return self._call(
            "POST", "/send_message", json={"user_id": user_id, "text": text, **fields}
        )  # type: ignore[no-any-return]

    def send_photo(
        self,
        user_id: int,
        data: bytes,
        *,
        caption: str | None = None,
        as_document: bool = False,
        filename: str = "photo.png",
        content_type: str = "image/png",
        **fields: Any,
    ) -> Record:
        """A user's photo; `as_document` sends it "without compression", as a file."""
        form = {"user_id": str(user_id), "as_document": "1" if as_document else "", **fields}
        if caption is not None:
            form["caption"] = caption
        files = {"photo": (filename, data, content_type)}
        return self._call("POST", "/send_photo", data=form, files=files)  # type: ignore[no-any-return]

    def send_album(
        self,
        user_id: int,
        photos: list[bytes],
        *,
        caption: str | None = None,
        order: list[int] | None = None,
        **fields: Any,
    ) -> Record:
        """Photos sent at once, as an album: one update each, in `order` (indexes; one named
        twice is delivered twice)."""
        form = {"user_id": str(user_id), **fields}
        if caption is not None:
            form["caption"] = caption
        if order is not None:
            form["order"] = ",".join(str(index) for index in order)
        files = {f"photo{i}": (f"photo{i}.png", data, "image/png") for i, data in enumerate(photos)}
        return self._call("POST", "/send_album", data=form, files=files)  # type: ignore[no-any-return]

    def press_button(
        self, user_id: int, message_id: int, callback_data: str, **fields: Any
    ) -> Record:
        body = {"user_id": user_id, "message_id": message_id, "callback_data": callback_data}
        return self._call("POST", "/press_button", json={**body, **fields})  # type: ignore[no-any-return]

    def pay(self, user_id: int, message_id: int, **fields: Any) -> Record:
        """The user pays the invoice in `message_id`: the pre-checkout query, the bot's
        answer, then the successful payment if the bot said ok (each as delivered)."""
        body = {"user_id": user_id, "message_id": message_id, **fields}
        return self._call("POST", "/pay", json=body)  # type: ignore[no-any-return]

    def pay_link(self, user_id: int, link: str, **fields: Any) -> Record:
        """The user opens an invoice link and pays it, as `pay` does; a subscription's link
        starts the subscription (the answer's `charge_id` names it for `renew`)."""
        body = {"user_id": user_id, "link": link, **fields}
        return self._call("POST", "/pay_link", json=body)  # type: ignore[no-any-return]

    def renew(self, charge_id: str) -> Record:
        """Telegram renews the subscription that `charge_id` paid a period of: a new charge
        and its payment update. Raises httpx.HTTPStatusError (409) for one the bot
        cancelled."""
        return self._call("POST", "/renew", json={"charge_id": charge_id})  # type: ignore[no-any-return]

    def inline_query(self, user_id: int, query: str, **fields: Any) -> Record:
        """The user types `@bot <query>`; the answer is the bot's answerInlineQuery call."""
        body = {"user_id": user_id, "query": query, **fields}
        return self._call("POST", "/inline_query", json=body)  # type: ignore[no-any-return]

    def web_app(self, user_id: int, **fields: Any) -> Record:
        """The URL (and initData) the user's client opens for a Mini App: `url`, else the
        chat's menu button; `auth_date` backdates the initData."""
        return self._call("POST", "/web_app", json={"user_id": user_id, **fields})  # type: ignore[no-any-return]

    def share(self, user_id: int, prepared_id: str, chat_id: int) -> Record:
        """The user shares a prepared message into `chat_id` from the Mini App's dialog."""
        body = {"user_id": user_id, "prepared_id": prepared_id, "chat_id": chat_id}
        return self._call("POST", "/share", json=body)  # type: ignore[no-any-return]

    def send_update(self, update: dict[str, Any], repeat: int = 1) -> Record:
        return self._call("POST", "/updates", json={**update}, params={"repeat": repeat})  # type: ignore[no-any-return]

    def fault(self, **spec: Any) -> None:
        self._call("POST", "/faults", json=spec)

    def block(self, user_id: int) -> None:
        self._call("POST", f"/users/{user_id}/block")

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def messages(self, chat_id: int) -> list[Record]:
        return self._call("GET", f"/chats/{chat_id}/messages")  # type: ignore[no-any-return]


class FalSandbox(_Control):
    def requests(self, kind: str | None = None) -> list[Record]:
        params = {"kind": kind} if kind else {}
        return self._call("GET", "/requests", params=params)  # type: ignore[no-any-return]

    def status_checks(self, submits: list[Record]) -> list[Record]:
        """Status requests about these submitted jobs only.

        The sweeper may rightly check a job an earlier test left at fal; those are not ours.
        """
        urls = {f"/requests/{submit['request_id']}/" for submit in submits}
        return [r for r in self.requests("status") if any(u in r["url"] for u in urls)]

    def configure(self, **config: Any) -> None:
        self._call("POST", "/config", json=config)

    def fault(self, **spec: Any) -> None:
        self._call("POST", "/faults", json=spec)

    def job(self, request_id: str) -> Record:
        return self._call("GET", f"/jobs/{request_id}")  # type: ignore[no-any-return]

    def resend_webhook(self, request_id: str, copies: int = 1) -> None:
        self._call("POST", f"/jobs/{request_id}/webhook", json={"copies": copies})

    def sign(self, body: str, request_id: str, **fields: Any) -> dict[str, str]:
        answer = self._call(
            "POST", "/sign", json={"body": body, "request_id": request_id, **fields}
        )
        return answer["headers"]  # type: ignore[no-any-return]

    def wait_for(self, kind: str, count: int = 1, timeout: float = 20) -> list[Record]:
        return wait_until(lambda: self.requests(kind), count, timeout)
