"""POST /webhooks/fal: fal reports a finished request here.

Only a correctly signed, fresh webhook changes anything (401 otherwise). A duplicate or an
unknown job still gets 200, so fal stops retrying; our own failure (database down) is a 5xx,
so fal tries again later.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status

from api.body import read_capped
from api.deps import ResourcesDep, VerifierDep
from core.fal_client import InvalidFalWebhook, parse_webhook
from core.fal_results import record_fal_result
from core.fal_signature import FalKeysUnavailable, InvalidFalSignature
from core.metrics import FAL_WEBHOOKS

router = APIRouter()

FAL_BODY_LIMIT = 4 * 1024 * 1024


@router.post("/webhooks/fal")
async def fal_webhook(
    request: Request,
    resources: ResourcesDep,
    verifier: VerifierDep,
    job: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, str]:
    body = await read_capped(request, FAL_BODY_LIMIT)
    try:
        await verifier.verify(request.headers, body)
    except FalKeysUnavailable:
        FAL_WEBHOOKS.labels("keys_unavailable").inc()
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "fal keys unavailable") from None
    except InvalidFalSignature as exc:
        FAL_WEBHOOKS.labels("unverified").inc()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"signature: {exc}") from None
    try:
        webhook = parse_webhook(body)
    except InvalidFalWebhook as exc:
        FAL_WEBHOOKS.labels("malformed").inc()
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    outcome = await record_fal_result(resources.sessions, resources.redis, webhook, job)
    FAL_WEBHOOKS.labels(outcome.value).inc()
    return {"status": outcome.value}
