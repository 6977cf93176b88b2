"""POST /webhooks/fal: fal reports a finished request here.

In order, and nothing is changed before every check has passed:
1. the signature headers' shape and the timestamp's freshness, before the body is read
   (401 otherwise);
2. the body, capped (413), and its ED25519 signature by one of fal's keys (401 otherwise;
   503 when no key could be fetched at all: our problem, fal tries again later);
3. the binding to the job: the URL's token must be the job's (`core/fal/webhook.py`): in
   the path, `/webhooks/fal/<job>/<token>`, or, from releases before, `?job=&token=`; and
   once the job knows its fal request, the webhook must be about that request
   (`core/jobs/fal_result.py`).

Every 401 says only "invalid signature": the reason is logged, never told to the sender.

A webhook that fails the binding gets 200 {"status": "ignored"}, not a 4xx. It is signed by
fal, so it is fal that would be told "failed" and retry it, about ten times over two hours:
an attacker with a fal account would turn each forged request into a dozen calls. 200 ends
it at once and reveals nothing; nothing was changed and nothing is delivered, and the
job's genuine webhook (or the sweeper's status check) finishes it as if the forgery had
never come. A duplicate or an unknown job also gets 200, so fal stops retrying; our own
failure (database down) is a 5xx, so fal tries again later.

kadr does not check `X-Fal-Webhook-User-Id` against its own fal user id: nothing in its
configuration names that id (FAL_KEY is a key id and secret, not the account), and adding a
required variable is outside the configuration contract. The per-job token already binds the
webhook to a URL only fal and kadr know.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, HTTPException, Request, status

from api.body import read_capped
from api.deps import ResourcesDep, VerifierDep
from api.rate_limits import limit_fal_webhooks
from core.fal.client import InvalidFalWebhook, parse_webhook
from core.fal.webhook import FalKeysUnavailable, InvalidFalSignature, is_bound
from core.infra.metrics import FAL_WEBHOOKS
from core.infra.retry import is_outage
from core.jobs.fal_result import Recorded, record_fal_result

log = logging.getLogger(__name__)

router = APIRouter()

FAL_BODY_LIMIT = 4 * 1024 * 1024
IGNORED = {"status": "ignored"}


@router.post("/webhooks/fal/{job}/{token}", dependencies=[Depends(limit_fal_webhooks)])
async def fal_webhook(
    request: Request,
    resources: ResourcesDep,
    verifier: VerifierDep,
    job: str,
    token: str,
) -> dict[str, str]:
    return await _receive(request, resources, verifier, job, token)


@router.post("/webhooks/fal", dependencies=[Depends(limit_fal_webhooks)])
async def fal_webhook_by_query(
    request: Request,
    resources: ResourcesDep,
    verifier: VerifierDep,
    job: str | None = None,
    token: str | None = None,
) -> dict[str, str]:
    """The binding in the query: the URLs of requests submitted before the path form."""
    return await _receive(request, resources, verifier, job, token)


async def _receive(
    request: Request,
    resources: ResourcesDep,
    verifier: VerifierDep,
    job: str | None,
    token: str | None,
) -> dict[str, str]:
    try:
        signed = verifier.check_headers(request.headers)
        body = await read_capped(request, FAL_BODY_LIMIT)
        await verifier.verify_body(signed, body)
    except FalKeysUnavailable:
        FAL_WEBHOOKS.labels("keys_unavailable").inc()
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "fal keys unavailable") from None
    except InvalidFalSignature as exc:
        FAL_WEBHOOKS.labels("unverified").inc()
        log.info("fal webhook refused: %s", exc.reason)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid signature") from None
    if job is None or not is_bound(resources.config, job, token):
        FAL_WEBHOOKS.labels("unbound").inc()
        log.warning(
            "signed fal webhook for request %s without its job's token (job %r): ignored",
            signed.request_id,
            (job or "")[:64],
        )
        return IGNORED
    try:
        webhook = parse_webhook(body)
    except InvalidFalWebhook as exc:
        FAL_WEBHOOKS.labels("malformed").inc()
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    try:
        outcome = await record_fal_result(resources, webhook, job)
    except Exception as exc:
        if not is_outage(exc):
            raise
        # The database or Redis is away: fal sends the webhook again, and its copy records
        # the result, or queues the delivery of the one recorded before Redis went.
        FAL_WEBHOOKS.labels("outage").inc()
        log.warning("fal webhook for job %s not recorded: %r", job[:64], exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "try again later") from None
    FAL_WEBHOOKS.labels(outcome.value).inc()
    return IGNORED if outcome is Recorded.UNBOUND else {"status": outcome.value}
