"""Verifying fal's signed webhooks.

Anyone who learns our webhook URL could post a fake "your video is ready". fal signs each
webhook with ED25519 over `request_id\\nuser_id\\ntimestamp\\nsha256_hex(body)` and publishes its
public keys as a JWKS; we accept a webhook only if one of those keys verifies it and the
timestamp is fresh (which bounds replays).
"""

import asyncio
import base64
import hashlib
import logging
import time
from collections.abc import Mapping

import httpx
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

log = logging.getLogger(__name__)

REQUEST_ID = "x-fal-webhook-request-id"
USER_ID = "x-fal-webhook-user-id"
TIMESTAMP = "x-fal-webhook-timestamp"
SIGNATURE = "x-fal-webhook-signature"
_ED25519_KEY_BYTES = 32
_ED25519_SIGNATURE_BYTES = 64


class InvalidFalSignature(Exception):
    """The webhook must be refused (401); `reason` says why, for logs, never for the sender."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FalKeysUnavailable(InvalidFalSignature):
    """No keys could be fetched: our problem, not the sender's; a 503 lets fal retry later."""


def decode_jwk_x(x: str) -> bytes:
    """JWKS values are base64url without padding, which Python's decoder will not take as is."""
    raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
    if len(raw) != _ED25519_KEY_BYTES:
        raise ValueError(f"an Ed25519 key has {_ED25519_KEY_BYTES} bytes, not {len(raw)}")
    return raw


def signed_message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
    return "\n".join([request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()]).encode()


def _keys_from(jwks: object) -> list[VerifyKey]:
    entries = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(entries, list):
        raise ValueError("JWKS has no key list")
    keys = []
    for entry in entries:
        if not isinstance(entry, dict) or (entry.get("kty"), entry.get("crv")) != (
            "OKP",
            "Ed25519",
        ):
            continue
        try:
            keys.append(VerifyKey(decode_jwk_x(str(entry.get("x", "")))))
        except (ValueError, TypeError) as exc:
            log.warning("skipping a malformed fal JWKS key: %s", exc)
    if not keys:
        raise ValueError("JWKS has no usable Ed25519 key")
    return keys


class FalWebhookVerifier:
    """One per process, shared by all requests: keys are cached for `ttl` seconds.

    A signature no cached key verifies triggers one refetch (fal may have rotated keys), but at
    most one per `refetch_interval`, so a flood of forged webhooks cannot turn into a flood of
    JWKS requests. Concurrent callers that need keys wait for the same fetch.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        jwks_url: str,
        *,
        ttl: float = 24 * 3600,
        leeway: float = 300,
        refetch_interval: float = 30,
    ) -> None:
        self._http = http
        self._jwks_url = jwks_url
        self._ttl = ttl
        self._leeway = leeway
        self._refetch_interval = refetch_interval
        self._keys: list[VerifyKey] = []
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._fetch: asyncio.Task[None] | None = None

    async def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raises InvalidFalSignature unless the webhook is fal's, fresh and unaltered."""
        request_id, user_id, timestamp, signature = self._read_headers(headers)
        message = signed_message(request_id, user_id, timestamp, body)
        if self._matches(await self._current_keys(miss=False), message, signature):
            return
        if self._matches(await self._current_keys(miss=True), message, signature):
            return
        raise InvalidFalSignature("signature matches no fal JWKS key")

    def _read_headers(self, headers: Mapping[str, str]) -> tuple[str, str, str, bytes]:
        lowered = {name.lower(): value for name, value in headers.items()}
        names = (REQUEST_ID, USER_ID, TIMESTAMP, SIGNATURE)
        missing = [name for name in names if not lowered.get(name)]
        if missing:
            raise InvalidFalSignature(f"missing header(s): {', '.join(missing)}")
        timestamp = lowered[TIMESTAMP].strip()
        if not timestamp.isdigit():
            raise InvalidFalSignature("timestamp is not unix seconds")
        if abs(time.time() - int(timestamp)) > self._leeway:
            raise InvalidFalSignature("timestamp outside the allowed window")
        try:
            signature = bytes.fromhex(lowered[SIGNATURE].strip())
        except ValueError:
            raise InvalidFalSignature("signature is not hex") from None
        if len(signature) != _ED25519_SIGNATURE_BYTES:
            raise InvalidFalSignature("signature has the wrong length")
        return lowered[REQUEST_ID], lowered[USER_ID], timestamp, signature

    @staticmethod
    def _matches(keys: list[VerifyKey], message: bytes, signature: bytes) -> bool:
        for key in keys:
            try:
                key.verify(message, signature)
            except BadSignatureError:
                continue
            return True
        return False

    async def _current_keys(self, *, miss: bool) -> list[VerifyKey]:
        if self._should_fetch(miss):
            if self._fetch is None:
                self._attempted_at = time.monotonic()
                self._fetch = asyncio.create_task(self._refresh())
            # Shielded: one caller giving up must not cancel the fetch the others wait on.
            await asyncio.shield(self._fetch)
        if not self._keys:
            raise FalKeysUnavailable("no fal JWKS keys could be fetched")
        return self._keys

    def _should_fetch(self, miss: bool) -> bool:
        if self._fetch is not None:
            return True
        now = time.monotonic()
        if self._attempted_at is not None and now - self._attempted_at < self._refetch_interval:
            return False
        return miss or self._fetched_at is None or now - self._fetched_at >= self._ttl

    async def _refresh(self) -> None:
        """Never raises: on failure the old keys stay, which beats rejecting every webhook."""
        try:
            response = await self._http.get(self._jwks_url)
            response.raise_for_status()
            self._keys = _keys_from(response.json())
            self._fetched_at = time.monotonic()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("fetching fal JWKS from %s failed: %s", self._jwks_url, exc)
        finally:
            self._fetch = None
