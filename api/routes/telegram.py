"""POST /webhooks/telegram: the only door Telegram knocks on."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, status

from api.body import parse_json, read_capped
from api.deps import IntakeDep, SettingsDep
from core.metrics import TELEGRAM_UPDATES
from core.updates import InvalidUpdate

router = APIRouter()


@router.post("/webhooks/telegram")
async def telegram_webhook(
    request: Request,
    settings: SettingsDep,
    intake: IntakeDep,
    secret: Annotated[str | None, Header(alias="X-Telegram-Bot-Api-Secret-Token")] = None,
) -> dict[str, str]:
    """Answers 200 for everything it accepted or ignored; 401 only for a wrong secret, since
    Telegram redelivers any other error."""
    if not hmac.compare_digest((secret or "").encode(), settings.TELEGRAM_WEBHOOK_SECRET.encode()):
        TELEGRAM_UPDATES.labels("unauthorized", "rejected").inc()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong or missing secret token")
    body = parse_json(await read_capped(request))
    try:
        outcome = await intake.accept(body)
    except InvalidUpdate as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    return {"status": outcome.value}
