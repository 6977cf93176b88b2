"""POST /webhooks/telegram: where Telegram delivers every update.

The webhook only stores: once the update is in the durable inbox (core.telegram.inbox) Telegram
gets its 200, and handlers take it from there in whatever process runs them. It never waits for a
handler. A private chat's prompt or photo gets its 👀 in that 200's body (core.telegram.seen), so
the user sees it was taken however long the handlers' line is; a copy of an update gets it too,
as Telegram sends one only when it never got (nor ran) the first answer.

It is plain ASGI in front of the FastAPI application, not a route nor one of its middlewares:
it is the one path that runs per update, and FastAPI's routing, dependency solving and the
instrumentator's route lookup cost three times what the webhook itself does (parse the JSON, one
Redis script); wrapped around the application rather than added to its middleware stack, it
also skips FastAPI's and Starlette's own layers (a tenth of the webhook's CPU). Every other path
goes on to FastAPI untouched.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.types import Message, Receive, Scope, Send

from api.rate_limits import TOO_MANY, AddressLimit
from core.infra.metrics import TELEGRAM_UPDATES, TELEGRAM_WEBHOOK_SECONDS
from core.telegram.inbox import Inbox, InvalidUpdate, partition_of, update_id_of
from core.telegram.seen import reaction_answer, seen_on_receipt

log = logging.getLogger(__name__)

PATH = "/webhooks/telegram"
#: Posts per second from one client address before any is read (api/rate_limits.py):
#: Telegram delivers over at most 100 connections from a few addresses, at a few hundred
#: updates per second at the very most, so this refuses only a flood.
FLOOD_LIMIT = "2000/second"
SECRET_HEADER = b"x-telegram-bot-api-secret-token"
BODY_LIMIT = 1024 * 1024
ACCEPTED = TELEGRAM_UPDATES.labels("any", "accepted")
DUPLICATE = TELEGRAM_UPDATES.labels("any", "duplicate")


@dataclass(frozen=True)
class WebhookState:
    """What the webhook needs, made once at start-up (api.app's lifespan)."""

    secret: bytes
    inbox: Inbox


class Refused(Exception):
    """An answer other than 200; `reason` is safe to show to the caller."""

    def __init__(self, status: int, reason: str, outcome: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.outcome = outcome


Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


def _answer(status: int, payload: dict[str, str]) -> Answer:
    return _json(status, json.dumps(payload).encode())


def _json(status: int, body: bytes) -> Answer:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    return status, headers, body


#: The two answers to an update, encoded once.
STORED = {
    stored: _answer(200, {"status": s}) for stored, s in ((True, "accepted"), (False, "duplicate"))
}
NOT_ALLOWED = _answer(405, {"detail": "Method Not Allowed"})
FLOODED = _answer(429, {"detail": TOO_MANY})


class TelegramWebhook:
    """ASGI: answers `POST /webhooks/telegram`, passes everything else (lifespan included) on
    to `app`, whose lifespan puts the `WebhookState` on its state."""

    def __init__(self, app: Starlette, flood_limit: str = FLOOD_LIMIT) -> None:
        self.app = app
        self._flood_limit = AddressLimit(flood_limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        if scope["method"] != "POST":
            status, headers, body = NOT_ALLOWED
        elif not await self._flood_limit.allows(scope):
            TELEGRAM_UPDATES.labels("flood", "rejected").inc()
            status, headers, body = FLOODED
        else:
            try:
                status, headers, body = await self._store(scope, receive)
            except Refused as refused:
                if refused.outcome is not None:
                    TELEGRAM_UPDATES.labels(refused.outcome, "rejected").inc()
                status, headers, body = _answer(refused.status, {"detail": str(refused)})
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        TELEGRAM_WEBHOOK_SECONDS.observe(time.perf_counter() - started)

    async def _store(self, scope: Scope, receive: Receive) -> Answer:
        """The 200 for an update stored now or before (a copy), with the reaction it earns.
        Refused otherwise."""
        webhook: WebhookState = self.app.state.telegram_webhook
        headers = dict(scope["headers"])
        if not hmac.compare_digest(headers.get(SECRET_HEADER, b""), webhook.secret):
            raise Refused(401, "wrong or missing secret token", "unauthorized")
        declared = headers.get(b"content-length", b"")
        # Longer than the cap's digits is over it: int() of thousands of digits is an error.
        if declared.isdigit() and (
            len(declared) > len(str(BODY_LIMIT)) or int(declared) > BODY_LIMIT
        ):
            raise Refused(413, f"body over {BODY_LIMIT} bytes")
        raw = await _read_capped(receive)
        body = _parse(raw)
        try:
            update_id = update_id_of(body)
        except InvalidUpdate as exc:
            raise Refused(400, str(exc), "invalid") from None
        try:
            stored = await webhook.inbox.accept(update_id, partition_of(body, update_id), raw)
        except RedisError as exc:
            TELEGRAM_UPDATES.labels("any", "unavailable").inc()
            log.warning("inbox unavailable for update %s (%s); answering 503", update_id, exc)
            raise Refused(503, "inbox unavailable") from None
        (ACCEPTED if stored else DUPLICATE).inc()
        seen = seen_on_receipt(body)
        return STORED[stored] if seen is None else _json(200, reaction_answer(*seen))


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Refused(400, f"body is not JSON: {exc}", "invalid") from None


async def _read_capped(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise Refused(400, "client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > BODY_LIMIT:
            raise Refused(413, f"body over {BODY_LIMIT} bytes")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)
