"""An in-process worker for the task tests: the real tasks on a migrated PostgreSQL database
and a real Redis, with fal faked at the HTTP transport (httpx.MockTransport) and the result
sender replaced by a recorder, so each fault is exact and a test takes milliseconds. The
fixture that builds it is `worker` (conftest.py)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from core.domain.catalog import catalog
from core.domain.models import Job
from core.domain.users import touch_user
from core.fal.client import FalWebhook
from core.jobs import lifecycle
from core.jobs.fal_result import record_fal_result
from core.jobs.queries import get_job
from core.telegram.receipts import Sent
from tests.builders import a_job
from workers.services import Services

FAL = "http://fal.test"
#: What fal's transport does with one request: answer it, or fail in a given way.
Behaviour = Callable[["FakeFal", httpx.Request], Awaitable[httpx.Response]]


@dataclass
class FakeFal:
    """fal's queue as the worker sees it over HTTP. `accepted`: the submits fal took (and
    would bill); `next`: how the next submits are answered (then normally)."""

    accepted: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    next: list[Behaviour] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)
    status_errors: dict[str, dict[str, str]] = field(default_factory=dict)
    """What a COMPLETED status carries for a request that failed (`error`, `error_type`)."""
    results_unavailable: int = 0
    """How many result requests fal answers 503 before it hands the result over."""
    status_delay: float = 0.0
    """Seconds fal takes to answer a status request."""
    status_peak: int = 0
    """The most status requests fal held at once."""
    _status_in_flight: int = 0
    took: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once fal has taken a submit."""
    _ids: Iterator[int] = field(default_factory=itertools.count)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and request.url.path.endswith("/cancel"):
            self.cancelled.append(request.url.path.split("/")[-2])
            return httpx.Response(202, json={"status": "CANCELLATION_REQUESTED"})
        if request.method == "GET" and request.url.path.endswith("/status"):
            self._status_in_flight += 1
            self.status_peak = max(self.status_peak, self._status_in_flight)
            try:
                await asyncio.sleep(self.status_delay)
            finally:
                self._status_in_flight -= 1
            request_id = request.url.path.split("/")[-2]
            status = self.statuses.get(request_id, "IN_QUEUE")
            body = {"status": status, **self.status_errors.get(request_id, {})}
            return httpx.Response(200 if status == "COMPLETED" else 202, json=body)
        if request.method == "GET" and "/requests/" in request.url.path:
            if self.results_unavailable:
                self.results_unavailable -= 1
                return httpx.Response(503, json={"detail": "Service Unavailable"})
            return httpx.Response(200, json={"images": [{"url": f"{FAL}/files/out.png"}]})
        if self.next:
            return await self.next.pop(0)(self, request)
        return self.accept(request)

    def accept(self, request: httpx.Request) -> httpx.Response:
        request_id = f"req-{next(self._ids)}"
        self.accepted.append(request_id)
        self.took.set()
        base = f"{FAL}/fal-ai/flux/requests/{request_id}"
        return httpx.Response(
            200,
            json={
                "request_id": request_id,
                "status_url": f"{base}/status",
                "response_url": base,
                "cancel_url": f"{base}/cancel",
                "queue_position": 0,
            },
        )


@dataclass
class FakeSender:
    """The Telegram side of delivery: what reached each chat."""

    results: list[int] = field(default_factory=list)
    notices: list[tuple[int, str]] = field(default_factory=list)
    fail_with: Exception | None = None

    async def send_result(self, chat_id: int, *args: Any, **kwargs: Any) -> Sent:
        if self.fail_with is not None:
            raise self.fail_with
        self.results.append(chat_id)
        return Sent(["file-id"], ["photo"], [len(self.results)])

    async def send_text(self, chat_id: int, text: str, **kwargs: Any) -> None:
        self.notices.append((chat_id, text))


@dataclass
class Worker:
    services: Services
    fal: FakeFal
    sender: FakeSender

    @property
    def sessions(self) -> Any:
        return self.services.resources.sessions

    async def job(self, user_id: int = 1, *, prompt: str = "a lantern") -> Job:
        """A new queued text-to-image job."""
        async with self.sessions() as session:
            await touch_user(
                session, user_id=user_id, username=None, first_name=None, language_code="en"
            )
        model = catalog().find("fal-ai/flux/schnell")
        assert model is not None
        job = a_job(user_id, prompt=prompt, model=model)
        assert await lifecycle.accept(self.sessions, job)
        return job

    async def reload(self, job: Job) -> Job:
        async with self.sessions() as session:
            stored = await get_job(session, job.id)
        assert stored is not None
        return stored

    async def webhook(self, job: Job, request_id: str, payload: Any = None) -> None:
        """fal's genuine webhook for `request_id`, as the api records it."""
        webhook = FalWebhook(
            request_id=request_id,
            status="OK",
            payload=payload or {"images": [{"url": f"{FAL}/files/out.png"}]},
        )
        resources = self.services.resources
        await record_fal_result(resources, webhook, job.id)

    async def error_webhook(self, job: Job, request_id: str, error_type: str) -> None:
        """fal's genuine webhook saying the request ended without a result."""
        webhook = FalWebhook(
            request_id=request_id, status="ERROR", error=error_type, error_type=error_type
        )
        await record_fal_result(self.services.resources, webhook, job.id)


def after_accepting(error: type[httpx.TransportError]) -> Behaviour:
    """fal takes the submit, then the answer never arrives (`error` is what the client sees)."""

    async def behave(fal: FakeFal, request: httpx.Request) -> httpx.Response:
        fal.accept(request)
        raise error("the connection went away", request=request)

    return behave


def hanging_after_accepting() -> Behaviour:
    """fal takes the submit and the answer hangs (the task gets cancelled meanwhile)."""

    async def behave(fal: FakeFal, request: httpx.Request) -> httpx.Response:
        fal.accept(request)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return behave


def answering(response: httpx.Response, *, accepted: bool = False) -> Behaviour:
    """fal answers `response`; `accepted`: it queued (and bills) the request all the same."""

    async def behave(fal: FakeFal, request: httpx.Request) -> httpx.Response:
        if accepted:
            fal.accept(request)
        return response

    return behave


def refusing_connection() -> Behaviour:
    """The connection is refused: fal never saw the request."""

    async def behave(fal: FakeFal, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    return behave
