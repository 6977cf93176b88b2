"""Signed webhook delivery with retries, and the JWKS that publishes the signing key.

The signed message is built here independently of kadr's verifier on purpose: a stand-in that
imported kadr's code would agree with kadr's bugs instead of catching them.
"""

import asyncio
import base64
import hashlib
import time

import httpx
from nacl.signing import SigningKey
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.fal.calls import CallLog
from sandbox.fal.config import Settings

USER_ID = "sandbox-user"
_TIMEOUT = httpx.Timeout(15.0, pool=60.0)
_IN_FLIGHT = 16
"""Concurrent webhook posts. httpcore's pool gets quadratically slower with the requests queued
on it, so a burst of thousands of completions waits here, on a cheap semaphore, instead."""


class Signer:
    """One ED25519 key per server run, generated at start, kept across resets."""

    def __init__(self) -> None:
        self._key = SigningKey.generate()
        public = bytes(self._key.verify_key)
        self.kid = hashlib.sha256(public).hexdigest()[:16]
        # 32 bytes are 43 base64 characters plus one "=": omitting it, as fal does, catches
        # verifiers that decode without padding first.
        self._x = base64.urlsafe_b64encode(public).decode().rstrip("=")

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": self._x,
                    "kid": self.kid,
                    "use": "sig",
                    "alg": "EdDSA",
                }
            ]
        }

    def headers(
        self,
        request_id: str,
        body: bytes,
        *,
        user_id: str = USER_ID,
        timestamp: str | None = None,
        forged: bool = False,
    ) -> dict[str, str]:
        stamp = timestamp if timestamp is not None else str(int(time.time()))
        message = "\n".join([request_id, user_id, stamp, hashlib.sha256(body).hexdigest()]).encode()
        key = SigningKey.generate() if forged else self._key
        return {
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": user_id,
            "X-Fal-Webhook-Timestamp": stamp,
            "X-Fal-Webhook-Signature": key.sign(message).signature.hex(),
        }

    def routes(self) -> list[Route]:
        async def jwks(_: Request) -> Response:
            return JSONResponse(self.jwks())

        return [Route("/.well-known/jwks.json", jwks, methods=["GET"])]


class WebhookSender:
    def __init__(
        self, http: httpx.AsyncClient, signer: Signer, calls: CallLog, settings: Settings
    ) -> None:
        self._http = http
        self._signer = signer
        self._calls = calls
        self._settings = settings
        self._slots = asyncio.Semaphore(_IN_FLIGHT)

    async def deliver(
        self, request_id: str, url: str, body: bytes, copies: int
    ) -> list[int | None]:
        """Copies go out concurrently, the nastiest case for a receiver's dedup."""
        return list(
            await asyncio.gather(
                *(self._deliver_copy(request_id, url, body) for _ in range(copies))
            )
        )

    async def _deliver_copy(self, request_id: str, url: str, body: bytes) -> int | None:
        """Retries non-2xx and transport errors with doubling delays; returns the last status."""
        config = self._settings.current
        status: int | None = None
        for attempt in range(1, config.webhook_retries + 2):
            if attempt > 1:
                await asyncio.sleep(config.webhook_retry_delay * 2 ** (attempt - 2))
            status = await self._attempt(request_id, url, body, attempt)
            if status is not None and 200 <= status < 300:
                break
        return status

    async def _attempt(self, request_id: str, url: str, body: bytes, attempt: int) -> int | None:
        call = self._calls.open("webhook", "POST", url, request_id=request_id, attempt=attempt)
        try:
            async with self._slots:
                # Signed once a slot is free, so a long wait cannot make the timestamp stale.
                headers = {
                    "Content-Type": "application/json",
                    **self._signer.headers(request_id, body),
                }
                response = await self._http.post(
                    url, content=body, headers=headers, timeout=_TIMEOUT
                )
        except httpx.HTTPError as exc:
            call.error = type(exc).__name__
            return None
        call.status = response.status_code
        return response.status_code
