"""kadr's side of fal's queue and storage APIs, on the process's one shared httpx client.

Every failure becomes one of two exceptions, because callers only need to decide one thing:
`FalRetryableError` (fal or the network had a bad moment: try again later) or `FalFinalError`
(fal refused this request: retrying cannot help). A retryable error after the request was
sent is `FalOutcomeUnknown`, because a submit must then not be sent again. The API key is
never part of an exception or a log line; messages are built from scratch and scrubbed of it
in case fal echoes it back.
"""

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from http import HTTPStatus
from typing import Any

import httpx

log = logging.getLogger(__name__)

_TOKEN_MARGIN = 300.0
"""Seconds before expiry when a storage token is replaced, so no upload starts on a dying one."""
_SUMMARY_CHARS = 200
_STILL_RUNNING = "Request is still in progress"


class FalError(Exception):
    """`status` is the HTTP status fal answered, None when no answer came."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class FalRetryableError(FalError):
    """5xx, 429, 408, timeouts and transport errors: fal does not bill these; try again later."""


class FalOutcomeUnknown(FalRetryableError):
    """The request was sent but no usable answer came (read timeout, connection reset, a 200
    without the request's URLs): fal may have acted on it. Harmless to repeat for a read;
    a submit must not be sent again (fal has no idempotency key)."""


#: Transport errors raised before the request was written: fal cannot have seen it.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
    httpx.ProxyError,
)


class FalFinalError(FalError):
    """fal refused the request (4xx, 422 validation, content policy): do not retry."""

    def __init__(
        self, message: str, *, status: int | None = None, error_type: str | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.error_type = error_type


class FalModelNotFound(FalFinalError):
    """fal answered a submit 404: it has no such model (retired, renamed, or mistyped in the
    catalog). Every job of that model fails the same way until the catalog changes."""


class InvalidFalWebhook(ValueError):
    """The webhook body is not what fal sends; answer 400."""


@dataclass(frozen=True, slots=True)
class FalSubmission:
    """Keep all URLs: they use only owner/app of the model id, so rebuilding them goes wrong."""

    request_id: str
    status_url: str
    response_url: str
    cancel_url: str
    queue_position: int | None = None


class FalCancelOutcome(StrEnum):
    """What fal's cancel answered. REQUESTED removes a queued request; to one in progress it
    is only a signal, and the model may finish (and be billed)."""

    REQUESTED = "CANCELLATION_REQUESTED"
    ALREADY_COMPLETED = "ALREADY_COMPLETED"
    NOT_FOUND = "NOT_FOUND"


@dataclass(frozen=True, slots=True)
class FalStatus:
    status: str
    """IN_QUEUE, IN_PROGRESS or COMPLETED; a failed request is COMPLETED too, with `error`
    or `error_type` set (and its result raises FalFinalError)."""
    error: str | None = None
    error_type: str | None = None

    @property
    def completed(self) -> bool:
        return self.status == "COMPLETED"

    @property
    def failed(self) -> bool:
        return self.completed and bool(self.error or self.error_type)


@dataclass(frozen=True, slots=True)
class FalWebhook:
    """What fal posts when a request ends; match it by request_id, never gateway_request_id."""

    request_id: str
    status: str
    """OK or ERROR; ignore anything else."""
    payload: Any = None
    """None when fal could not attach it: the result is fetched when it is delivered."""
    error: str | None = None
    error_type: str | None = None


def error_type_of(payload: Any) -> str | None:
    """fal's error kind: `detail[0].type` for model errors, `error_type` for infrastructure ones."""
    if not isinstance(payload, dict):
        return None
    detail = payload.get("detail")
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first_type = detail[0].get("type")
        if isinstance(first_type, str):
            return first_type
    error_type = payload.get("error_type")
    return error_type if isinstance(error_type, str) else None


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_webhook(body: bytes) -> FalWebhook:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise InvalidFalWebhook(f"webhook body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidFalWebhook("webhook body is not a JSON object")
    request_id, status = data.get("request_id"), data.get("status")
    if not isinstance(request_id, str) or not request_id:
        raise InvalidFalWebhook("webhook has no request_id")
    if not isinstance(status, str):
        raise InvalidFalWebhook("webhook has no status")
    payload = data.get("payload")
    return FalWebhook(
        request_id=request_id,
        status=status,
        payload=payload,
        error=_text_or_none(data.get("error")),
        error_type=error_type_of(payload) if status == "ERROR" else None,
    )


def _summary(payload: Any, text: str) -> str:
    """A short, human line out of fal's error body: its detail message, else the raw text."""
    detail = payload.get("detail") if isinstance(payload, dict) else None
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        detail = detail[0].get("msg", detail[0])
    summary = str(detail) if detail is not None else text
    return " ".join(summary.split())[:_SUMMARY_CHARS]


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _is_retryable(response: httpx.Response, payload: Any) -> bool:
    if response.headers.get("x-fal-request-timeout-type") == "user":
        return False  # our own start deadline passed: the request is over, not delayed
    if response.status_code >= 500 or response.status_code in (408, 429):
        return True
    # A result asked for too early comes back 400, but it will be there later.
    return isinstance(payload, dict) and payload.get("detail") == _STILL_RUNNING


@dataclass(frozen=True, slots=True)
class _StorageToken:
    token: str
    token_type: str
    base_url: str
    expires_at: float

    def fresh(self) -> bool:
        return self.expires_at - _TOKEN_MARGIN > time.time()


def _expiry(value: Any) -> float:
    moment = datetime.fromisoformat(str(value))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class FalClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        key: str,
        queue_url: str,
        rest_url: str,
        run_url: str = "https://fal.run",
        timeout: float = 30.0,
        upload_timeout: float = 300.0,
    ) -> None:
        self._http = http
        self._key = key
        self._queue_url = queue_url.rstrip("/")
        self._rest_url = rest_url.rstrip("/")
        self._run_url = run_url.rstrip("/")
        self._timeout = timeout
        self._upload_timeout = upload_timeout
        self._token: _StorageToken | None = None
        self._token_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"FalClient(queue_url={self._queue_url!r}, rest_url={self._rest_url!r})"

    async def submit(
        self,
        model_id: str,
        arguments: dict[str, Any],
        *,
        webhook_url: str,
    ) -> FalSubmission:
        """Not idempotent (fal has no key for it): put the job id into webhook_url."""
        try:
            data = await self._json(
                f"submit {model_id}",
                "POST",
                f"{self._queue_url}/{model_id.strip('/')}",
                params={"fal_webhook": webhook_url},
                json=arguments,
            )
        except FalFinalError as exc:
            if exc.status != HTTPStatus.NOT_FOUND:
                raise
            raise FalModelNotFound(
                exc.message, status=exc.status, error_type=exc.error_type
            ) from None
        try:
            return FalSubmission(
                request_id=str(data["request_id"]),
                status_url=str(data["status_url"]),
                response_url=str(data["response_url"]),
                cancel_url=str(data["cancel_url"]),
                queue_position=data.get("queue_position"),
            )
        except (KeyError, TypeError):
            raise FalOutcomeUnknown(
                f"fal submit {model_id}: answer lacks the request's URLs"
            ) from None

    async def run(
        self, model_id: str, arguments: dict[str, Any], *, http_timeout: float
    ) -> dict[str, Any]:
        """fal.run: the model's output in the same call, for what is quick (an LLM's answer).
        fal does not retry these; neither does this."""
        return await self._json(
            f"run {model_id}",
            "POST",
            f"{self._run_url}/{model_id.strip('/')}",
            json=arguments,
            http_timeout=http_timeout,
        )

    async def status(self, status_url: str, *, http_timeout: float | None = None) -> FalStatus:
        """`http_timeout`: seconds for this call instead of the client's default."""
        data = await self._json(
            "status", "GET", status_url, accept=(200, 202), http_timeout=http_timeout
        )
        if not isinstance(data.get("status"), str):
            raise FalRetryableError("fal status: answer has no status")
        return FalStatus(
            status=data["status"],
            error=_text_or_none(data.get("error")),
            error_type=_text_or_none(data.get("error_type")),
        )

    async def result(
        self, response_url: str, *, http_timeout: float | None = None
    ) -> dict[str, Any]:
        """The model output; a failed request raises FalFinalError carrying fal's error_type."""
        return await self._json("result", "GET", response_url, http_timeout=http_timeout)

    async def cancel(
        self, cancel_url: str, *, http_timeout: float | None = None
    ) -> FalCancelOutcome:
        """fal's documented answers are outcomes; anything else raises FalError."""
        response = await self._send("cancel", "PUT", cancel_url, http_timeout=http_timeout)
        payload = _json_or_none(response)
        status = payload.get("status") if isinstance(payload, dict) else None
        if response.status_code in (200, 202):
            return FalCancelOutcome.REQUESTED
        if response.status_code == 400 and status == FalCancelOutcome.ALREADY_COMPLETED:
            return FalCancelOutcome.ALREADY_COMPLETED
        if response.status_code == 404:
            return FalCancelOutcome.NOT_FOUND
        raise self._error("cancel", response)

    async def upload(
        self,
        stream: AsyncIterator[bytes],
        *,
        content_type: str,
        file_name: str,
        size: int | None = None,
    ) -> str:
        """Streams the bytes to fal's CDN and returns their public URL.

        A stream cannot be replayed, so a failed upload is never retried here: the caller gets
        FalRetryableError and opens the stream again.
        """
        token = await self._storage_token()
        headers = {
            "Authorization": f"{token.token_type} {token.token}",
            "Content-Type": content_type,
            "X-Fal-File-Name": file_name,
        }
        if size is not None:
            headers["Content-Length"] = str(size)
        response = await self._send(
            "upload",
            "POST",
            f"{token.base_url}/files/upload",
            content=stream,
            headers=headers,
            http_timeout=self._upload_timeout,
            authorize=False,
        )
        if response.status_code in (401, 403):
            self._token = None  # revoked early: the next upload gets a new one
            raise FalRetryableError(
                f"fal upload: storage token refused ({response.status_code})",
                status=response.status_code,
            )
        access_url = self._payload("upload", response).get("access_url")
        if not isinstance(access_url, str):
            raise FalRetryableError("fal upload: answer has no access_url")
        return access_url

    async def verify_key(self) -> None:
        """Raises unless fal accepts the key: a storage token is the cheapest authenticated
        call fal has, and it bills nothing (`kadr check`)."""
        await self._fetch_token()

    async def _storage_token(self) -> _StorageToken:
        """Reused until near expiry; the lock makes concurrent uploads share one refresh."""
        if self._token is not None and self._token.fresh():
            return self._token
        async with self._token_lock:
            if self._token is None or not self._token.fresh():
                self._token = await self._fetch_token()
            return self._token

    async def _fetch_token(self) -> _StorageToken:
        data = await self._json(
            "storage token",
            "POST",
            f"{self._rest_url}/storage/auth/token",
            params={"storage_type": "fal-cdn-v3"},
            json={},
        )
        try:
            return _StorageToken(
                token=str(data["token"]),
                token_type=str(data.get("token_type") or "Bearer"),
                base_url=str(data["base_url"]).rstrip("/"),
                expires_at=_expiry(data["expires_at"]),
            )
        except (KeyError, ValueError):
            raise FalRetryableError("fal storage token: malformed answer") from None

    async def _json(
        self, what: str, method: str, url: str, *, accept: tuple[int, ...] = (200,), **kwargs: Any
    ) -> dict[str, Any]:
        response = await self._send(what, method, url, **kwargs)
        if response.status_code not in accept:
            raise self._error(what, response)
        return self._payload(what, response)

    def _payload(self, what: str, response: httpx.Response) -> dict[str, Any]:
        if not response.is_success:
            raise self._error(what, response)
        payload = _json_or_none(response)
        if not isinstance(payload, dict):
            raise FalOutcomeUnknown(
                f"fal {what}: answer is not a JSON object", status=response.status_code
            )
        return payload

    async def _send(
        self,
        what: str,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        http_timeout: float | None = None,
        authorize: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        headers = dict(headers or {})
        if authorize:
            if not self._key.strip():
                raise FalFinalError(f"fal {what}: no FAL_KEY is configured")
            headers["Authorization"] = f"Key {self._key}"
        try:
            response = await self._http.request(
                method, url, headers=headers, timeout=http_timeout or self._timeout, **kwargs
            )
        except httpx.HTTPError as exc:
            # `from None`: the httpx exception holds the request, whose headers hold the key.
            error = FalRetryableError if isinstance(exc, _NOT_SENT) else FalOutcomeUnknown
            raise error(self._scrub(f"fal {what}: {type(exc).__name__}: {exc}")) from None
        log.debug("fal %s -> %s", what, response.status_code)
        return response

    def _error(self, what: str, response: httpx.Response) -> FalError:
        payload = _json_or_none(response)
        message = self._scrub(
            f"fal {what}: HTTP {response.status_code}: {_summary(payload, response.text)}"
        )
        if _is_retryable(response, payload):
            return FalRetryableError(message, status=response.status_code)
        # fal names the kind of error in a header; the body's detail carries it for model errors.
        error_type = response.headers.get("x-fal-error-type") or error_type_of(payload)
        return FalFinalError(
            message, status=response.status_code, error_type=error_type and self._scrub(error_type)
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text
