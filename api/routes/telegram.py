"""POST /webhooks/telegram: the only door Telegram knocks on.

The door only stores: once the update is in the durable inbox (core.inbox) Telegram gets its
200, and handlers take it from there in whatever process runs them. It never waits for a
handler, so its cost per update is a JSON parse and one Redis script.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass

from fastapi import APIRouter, HTTPException, Request, Response, status
from redis.exceptions import RedisError

from api.body import parse_json, read_capped
from core.inbox import Inbox, InvalidUpdate, partition_of, update_id_of
from core.metrics import TELEGRAM_UPDATES

router = APIRouter()
log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ACCEPTED = TELEGRAM_UPDATES.labels("any", "accepted")
DUPLICATE = TELEGRAM_UPDATES.labels("any", "duplicate")


@dataclass(frozen=True)
class Door:
    """What the door needs, made once at start-up (api.app's lifespan)."""

    secret: bytes
    inbox: Inbox


#: The two answers, encoded once: the door is the hottest path kadr has.
ANSWERS = {
    stored: Response(json.dumps({"status": outcome}).encode(), media_type="application/json")
    for stored, outcome in ((True, "accepted"), (False, "duplicate"))
}


@router.post("/webhooks/telegram", response_class=Response)
async def telegram_webhook(request: Request) -> Response:
    """200 for what is stored or a copy of it; 401 for a wrong secret; 400 for what is not an
    update; 503 when the inbox cannot take it, so that Telegram delivers it again.

    It reads the app's state itself instead of asking for typed dependencies: resolving them
    was a fifth of the door's CPU per update, and this is the one route that runs per update.
    """
    door: Door = request.app.state.door
    secret = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(secret.encode(), door.secret):
        TELEGRAM_UPDATES.labels("unauthorized", "rejected").inc()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong or missing secret token")
    raw = await read_capped(request)
    body = parse_json(raw)
    try:
        update_id = update_id_of(body)
    except InvalidUpdate as exc:
        TELEGRAM_UPDATES.labels("invalid", "rejected").inc()
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    try:
        stored = await door.inbox.accept(update_id, partition_of(body, update_id), raw)
    except RedisError as exc:
        TELEGRAM_UPDATES.labels("any", "unavailable").inc()
        log.warning("inbox unavailable for update %s (%s); answering 503", update_id, exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "inbox unavailable") from None
    (ACCEPTED if stored else DUPLICATE).inc()
    return ANSWERS[stored]
