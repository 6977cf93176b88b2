"""Every call the stand-in answers or makes, kept in order, and the faults injected into them.

Tests assert on what kadr actually sent (which URLs, how often, with what body), so each
incoming fal call and each outgoing webhook or download becomes one `Call` record.
"""

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, fields
from http import HTTPStatus
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger(__name__)

Faultable = Literal[
    "submit", "run", "status", "result", "cancel", "token", "upload", "cdn", "openapi"
]
Handler = Callable[[Request, "Call"], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]
Authorizer = Callable[[Request], str | None]
"""Returns why the request is not authorised, or None when it is."""

_CALL_LIMIT = 200_000


@dataclass(slots=True)
class Call:
    seq: int
    t: float
    kind: str
    method: str
    url: str
    status: int | None = None
    """HTTP status answered, or for outgoing calls the one received (None: no answer)."""
    model_id: str | None = None
    request_id: str | None = None
    body: Any = None
    headers: dict[str, str] | None = None
    auth: bool | None = None
    """Whether an Authorization header came; its value is never kept."""
    attempt: int | None = None
    fault: bool | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {f.name: value for f in fields(self) if (value := getattr(self, f.name)) is not None}


class CallLog:
    """Bounded so a long benchmark cannot grow the stand-in without limit."""

    def __init__(self, limit: int = _CALL_LIMIT) -> None:
        self._calls: deque[Call] = deque(maxlen=limit)
        self._seq = itertools.count(1)

    def open(self, kind: str, method: str, url: str, **details: Any) -> Call:
        """Recorded on arrival so the order is the order calls came in; status is filled later."""
        call = Call(next(self._seq), time.time(), kind, method, url, **details)
        self._calls.append(call)
        return call

    def select(
        self, kinds: Collection[str], request_id: str | None, since: int
    ) -> list[dict[str, Any]]:
        return [
            call.as_json()
            for call in self._calls
            if call.seq > since
            and (not kinds or call.kind in kinds)
            and (request_id is None or call.request_id == request_id)
        ]

    def clear(self) -> None:
        """Sequence numbers keep counting so a `since` cursor stays meaningful across resets."""
        self._calls.clear()


class Fault(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on: Faultable
    times: int = Field(default=1, ge=1)
    status: int | None = Field(default=503, ge=100, le=599)
    """None: only delay, then answer normally."""
    body: Any = None
    headers: dict[str, str] = Field(default_factory=dict)
    """Sent with the fault's answer (e.g. fal's `X-Fal-Error-Type`)."""
    delay: float = Field(default=0.0, ge=0)
    after_handling: bool = False
    """The request is handled first (a submit is queued: fal took it), then its answer is
    held `delay` seconds, or replaced when `status` is set: a client that times out or
    drops the connection meanwhile cannot know fal has the request."""


class Faults:
    def __init__(self) -> None:
        self._pending: list[list[Any]] = []

    def add(self, fault: Fault) -> None:
        self._pending.append([fault, fault.times])

    def take(self, kind: str) -> Fault | None:
        for entry in self._pending:
            fault, left = entry
            if fault.on == kind:
                if left == 1:
                    self._pending.remove(entry)
                else:
                    entry[1] = left - 1
                return fault
        return None

    def clear(self) -> None:
        self._pending.clear()

    def as_json(self) -> list[dict[str, Any]]:
        return [{**fault.model_dump(), "times": left} for fault, left in self._pending]


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def detail(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


def key_auth(request: Request) -> str | None:
    """fal's queue and REST APIs take `Authorization: Key <FAL_KEY>`; any non-empty key passes."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "key" or not key.strip():
        return "Missing or invalid credentials: expected 'Authorization: Key <FAL_KEY>'"
    return None


def base_url(request: Request, public_url: str | None) -> str:
    """Where clients reach us: the configured public URL, else what this request was sent to."""
    return (public_url or str(request.base_url)).rstrip("/")


class Gate:
    """Wraps each fal endpoint: record the call, check credentials, apply a pending fault."""

    def __init__(self, calls: CallLog, faults: Faults) -> None:
        self.calls = calls
        self.faults = faults

    def endpoint(
        self, kind: Faultable, authorize: Authorizer | None
    ) -> Callable[[Handler], Endpoint]:
        def wrap(handler: Handler) -> Endpoint:
            async def serve(request: Request) -> Response:
                call = self.calls.open(kind, request.method, str(request.url))
                response = await self._answer(request, call, handler, authorize)
                call.status = response.status_code
                return response

            return serve

        return wrap

    async def _answer(
        self, request: Request, call: Call, handler: Handler, authorize: Authorizer | None
    ) -> Response:
        if authorize is not None:
            call.auth = bool(request.headers.get("authorization", "").strip())
            if (problem := authorize(request)) is not None:
                return detail(401, problem)
        fault = self.faults.take(call.kind)
        if fault is None:
            return await self._handle(request, call, handler)
        call.fault = True
        answer = await self._handle(request, call, handler) if fault.after_handling else None
        await asyncio.sleep(fault.delay)
        if fault.status is not None:
            body = fault.body if fault.body is not None else {"detail": _phrase(fault.status)}
            return JSONResponse(body, status_code=fault.status, headers=fault.headers)
        return answer or await self._handle(request, call, handler)

    async def _handle(self, request: Request, call: Call, handler: Handler) -> Response:
        try:
            return await handler(request, call)
        except Exception as exc:
            log.exception("sandbox fal %s handler failed", call.kind)
            call.error = repr(exc)
            return detail(500, "Internal Server Error")
