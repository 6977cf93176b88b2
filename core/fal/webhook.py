"""fal's webhooks: is it fal's (the signature), and is it ours (the binding to its job).

**The signature.** Anyone who learns our webhook URL could post a fake "your video is
ready". fal signs each webhook with ED25519 over
`request_id\\nuser_id\\ntimestamp\\nsha256_hex(body)` and publishes its public keys as a
JWKS; we accept a webhook only if one of those keys verifies it and the timestamp is fresh
(which bounds replays).

**The binding.** An unguessable per-job token in the webhook URL. fal signs the webhooks of
all its customers with the same keys, so a valid signature proves only that fal sent it, not
that it is about a request of ours: anyone with a fal account can submit a request of their
own with our webhook URL and a job id they know (from a button's callback data, or someone
else's in a group) and fal will post a correctly signed "result" for that job. The token is
what they cannot know: an HMAC of the job id under a key derived from a server secret, given
to fal only in the URL of that job's own submit.

The key is derived from TELEGRAM_BOT_TOKEN, the one secret the api (which checks tokens) and
the worker (which makes them) both require (README's configuration table: the api does
not need FAL_KEY, the worker not TELEGRAM_WEBHOOK_SECRET), under a label of its own so that
the token says nothing about the secret and no other use of it can produce one. Whoever
holds the bot token holds the bot already; nothing new depends on it. Rotating the bot token
unbinds the webhooks of jobs in flight: they are ignored and the sweeper's status check
finishes those jobs instead.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import httpx
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from core.infra.config import Config

log = logging.getLogger(__name__)

REQUEST_ID = "x-fal-webhook-request-id"
USER_ID = "x-fal-webhook-user-id"
TIMESTAMP = "x-fal-webhook-timestamp"
SIGNATURE = "x-fal-webhook-signature"
_HEADER_NAMES = (REQUEST_ID, USER_ID, TIMESTAMP, SIGNATURE)
_ED25519_KEY_BYTES = 32
#: fal's ids are UUIDs and short names; 128 printable ASCII characters is plenty.
_ID_RE = re.compile(r"[\x21-\x7e]{1,128}")
#: Unix seconds, ASCII digits only; 12 digits reach the year 33658.
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
#: An Ed25519 signature is 64 bytes, 128 hex characters.
_SIGNATURE_RE = re.compile(r"[0-9a-fA-F]{128}")


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


@dataclass(frozen=True, slots=True)
class SignedHeaders:
    """fal's four signature headers, each checked for shape and the timestamp for freshness."""

    request_id: str
    user_id: str
    timestamp: str
    signature: bytes


def read_signed_headers(
    headers: Mapping[str, str], *, leeway: float, now: float | None = None
) -> SignedHeaders:
    """The headers, or InvalidFalSignature: run before the body is read, so a request that
    cannot be fal's costs no body read, no hash and no key lookup. Every check is a bounded
    ASCII pattern: `str.isdigit` takes `²` and `int` refuses 5,000 digits, both of which
    would otherwise end in a 500."""
    lowered = {name.lower(): value for name, value in headers.items()}
    missing = [name for name in _HEADER_NAMES if not lowered.get(name)]
    if missing:
        raise InvalidFalSignature(f"missing header(s): {', '.join(missing)}")
    request_id, user_id = lowered[REQUEST_ID], lowered[USER_ID]
    if not (_ID_RE.fullmatch(request_id) and _ID_RE.fullmatch(user_id)):
        raise InvalidFalSignature("request or user id is not a short printable ASCII string")
    timestamp = lowered[TIMESTAMP]
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        raise InvalidFalSignature("timestamp is not unix seconds")
    if abs((time.time() if now is None else now) - int(timestamp)) > leeway:
        raise InvalidFalSignature("timestamp outside the allowed window")
    signature = lowered[SIGNATURE]
    if not _SIGNATURE_RE.fullmatch(signature):
        raise InvalidFalSignature("signature is not 64 bytes of hex")
    return SignedHeaders(request_id, user_id, timestamp, bytes.fromhex(signature))


class FalWebhookVerifier:
    """One per process, shared by all requests: keys are cached for `ttl` seconds.

    A webhook that a cached key verifies never waits for the JWKS: a refetch in flight (a
    rotation suspected, or the keys' time up, refreshed in the background) holds back only
    the webhooks no cached key verifies. Such a miss triggers one refetch (fal may have
    rotated keys), but at most one per `refetch_interval`, so a flood of forged webhooks
    cannot turn into a flood of JWKS requests. Concurrent callers that need keys wait for
    the same fetch.
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

    def check_headers(self, headers: Mapping[str, str]) -> SignedHeaders:
        """Raises InvalidFalSignature unless the headers can be a fresh signature of fal's."""
        return read_signed_headers(headers, leeway=self._leeway)

    async def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raises InvalidFalSignature unless the webhook is fal's, fresh and unaltered."""
        await self.verify_body(self.check_headers(headers), body)

    async def verify_body(self, signed: SignedHeaders, body: bytes) -> None:
        """Raises InvalidFalSignature unless one of fal's keys signed these headers and body."""
        message = signed_message(signed.request_id, signed.user_id, signed.timestamp, body)
        if self._keys:
            self._refresh_if_old()
            if self._matches(self._keys, message, signed.signature):
                return
        await self._refetch()
        if not self._keys:
            raise FalKeysUnavailable("no fal JWKS keys could be fetched")
        if not self._matches(self._keys, message, signed.signature):
            raise InvalidFalSignature("signature matches no fal JWKS key")

    @staticmethod
    def _matches(keys: list[VerifyKey], message: bytes, signature: bytes) -> bool:
        for key in keys:
            try:
                key.verify(message, signature)
            except BadSignatureError:
                continue
            return True
        return False

    def _refresh_if_old(self) -> None:
        """Keys past their time are replaced in the background; until then the old ones serve."""
        fetched = self._fetched_at
        if fetched is not None and time.monotonic() - fetched >= self._ttl and self._may_fetch():
            self._start_fetch()

    async def _refetch(self) -> None:
        """A miss (or no keys yet): wait for the fetch in flight, or start one if allowed."""
        if self._fetch is None and self._may_fetch():
            self._start_fetch()
        if self._fetch is not None:
            # Shielded: one caller giving up must not cancel the fetch the others wait on.
            await asyncio.shield(self._fetch)

    def _may_fetch(self) -> bool:
        attempted = self._attempted_at
        return self._fetch is None and (
            attempted is None or time.monotonic() - attempted >= self._refetch_interval
        )

    def _start_fetch(self) -> None:
        self._attempted_at = time.monotonic()
        self._fetch = asyncio.create_task(self._refresh())

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


# The binding

_LABEL = b"kadr fal webhook v1"
#: 128 bits of the HMAC, as hex: far past guessing, short enough for a URL.
TOKEN_CHARS = 32
#: Job ids are 32 hex characters; anything much longer is not one of ours.
_MAX_JOB_ID = 64


def _key(config: Config) -> bytes:
    return hmac.new(config.TELEGRAM_BOT_TOKEN.encode(), _LABEL, hashlib.sha256).digest()


def job_token(config: Config, job_id: str) -> str:
    """The token of `job_id`'s webhook URL."""
    digest = hmac.new(_key(config), job_id.encode(), hashlib.sha256).hexdigest()
    return digest[:TOKEN_CHARS]


def job_webhook_url(config: Config, job_id: str) -> str:
    """The URL fal calls back for this job: the job id and the token that binds it, in the
    path (`/webhooks/fal/<job>/<token>`). No source says fal keeps a webhook URL's query
    string on every retry, and nothing between fal and kadr (a proxy, a redirect) drops a
    path. The api still takes the query form that releases before this one gave fal."""
    return f"{config.fal_webhook_url}/{quote(job_id, safe='')}/{job_token(config, job_id)}"


def is_bound(config: Config, job_id: str | None, token: str | None) -> bool:
    """Whether a webhook's job id and token belong together; compared in constant time so
    that the answer's timing does not spell out the token."""
    if not job_id or not token or len(job_id) > _MAX_JOB_ID or len(token) != TOKEN_CHARS:
        return False
    return hmac.compare_digest(job_token(config, job_id).encode(), token.encode())
