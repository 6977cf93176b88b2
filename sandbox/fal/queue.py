"""fal's queue API: submit, status, result, cancel, and each request's lifecycle; and its
synchronous API (fal.run: the answer in the same HTTP call), served under `/run/`.

Timers are the event loop's own (call_later keeps them in a heap), so 10,000 requests in
flight cost 10,000 small handles, not 10,000 sleeping tasks; a task exists only while a
request renders and delivers its webhook.
"""

import asyncio
import json
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.fal.calls import Call, Gate, base_url, detail, key_auth
from sandbox.fal.config import Settings
from sandbox.fal.models import Family, ModelError, Work, Workshop, family_of
from sandbox.fal.schemas import input_problems, openapi, retired
from sandbox.fal.webhooks import WebhookSender

log = logging.getLogger(__name__)

_JOB_LIMIT = 100_000
_REQUEST_PATH = "/{owner}/{app}/requests/{request_id}"
#: Where fal publishes an endpoint's queue OpenAPI (on fal.ai; the stand-in is every host).
_OPENAPI_PATH = "/api/openapi/queue/openapi.json"
#: Where the stand-in serves fal.run's synchronous calls (`FAL_RUN_URL` = this server + "/run").
RUN_PREFIX = "/run"


class State(StrEnum):
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class Failure:
    status: int
    payload: dict[str, Any]
    error: str
    error_type: str
    headers: dict[str, str] = field(default_factory=dict)


_CANCELLED = Failure(
    400, {"detail": "Request was cancelled"}, "Request was cancelled", "request_cancelled"
)


@dataclass(eq=False, slots=True)
class Job:
    request_id: str
    gateway_request_id: str
    model_id: str
    family: Family
    app_path: str
    """owner/app: status, result and cancel URLs leave out the rest of the model id."""
    arguments: dict[str, Any]
    webhook_url: str | None
    base_url: str
    headers: dict[str, str]
    submitted_at: float = field(default_factory=time.time)
    state: State = State.IN_QUEUE
    started_at: float | None = None
    finished_at: float | None = None
    latency: float = 0.0
    output: dict[str, Any] | None = None
    failure: Failure | None = None
    timer: asyncio.TimerHandle | None = None
    deadline: asyncio.TimerHandle | None = None
    task: asyncio.Task[None] | None = None

    @property
    def response_url(self) -> str:
        return f"{self.base_url}/{self.app_path}/requests/{self.request_id}"

    def urls(self) -> dict[str, str]:
        return {
            "response_url": self.response_url,
            "status_url": f"{self.response_url}/status",
            "cancel_url": f"{self.response_url}/cancel",
        }

    def webhook_body(self) -> bytes:
        """Compact JSON, so a receiver that re-serialises before verifying fails loudly."""
        body: dict[str, Any] = {
            "request_id": self.request_id,
            "gateway_request_id": self.gateway_request_id,
        }
        if self.failure is None:
            body |= {"status": "OK", "payload": self.output}
        else:
            body |= {
                "status": "ERROR",
                "error": self.failure.error,
                "payload": self.failure.payload,
            }
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()

    def view(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "gateway_request_id": self.gateway_request_id,
            "model_id": self.model_id,
            "family": self.family.name,
            "state": self.state,
            "input": self.arguments,
            "output": self.output,
            "error": self.failure and {"status": self.failure.status, **self.failure.payload},
            "webhook_url": self.webhook_url,
            "headers": self.headers,
            "submitted_at": self.submitted_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "latency": self.latency,
            **self.urls(),
        }


def _validation_error(error_type: str, msg: str, value: Any) -> JSONResponse:
    """Shaped like FastAPI's request validation errors, as fal's gateway answers."""
    return JSONResponse(
        {"detail": [{"type": error_type, "loc": ["body"], "msg": msg, "input": value}]}, 422
    )


def _start_timeout(request: Request) -> float | None:
    try:
        timeout = float(request.headers.get("x-fal-request-timeout", ""))
    except ValueError:
        return None
    return timeout if timeout > 0 else None


class FalQueue:
    def __init__(
        self,
        settings: Settings,
        gate: Gate,
        workshop: Workshop,
        webhooks: WebhookSender,
        public_url: str | None,
    ) -> None:
        self._settings = settings
        self._gate = gate
        self._workshop = workshop
        self._webhooks = webhooks
        self._public_url = public_url
        self.jobs: dict[str, Job] = {}
        self._waiting: deque[Job] = deque()
        self._running = 0
        self._finished: deque[str] = deque()
        self._tasks: set[asyncio.Task[Any]] = set()

    def routes(self) -> list[Route]:
        endpoint = self._gate.endpoint
        return [
            Route(
                f"{_REQUEST_PATH}/status",
                endpoint("status", key_auth)(self._status),
                methods=["GET"],
            ),
            Route(
                f"{_REQUEST_PATH}/cancel",
                endpoint("cancel", key_auth)(self._cancel),
                methods=["PUT"],
            ),
            Route(_REQUEST_PATH, endpoint("result", key_auth)(self._result), methods=["GET"]),
            Route(_OPENAPI_PATH, endpoint("openapi", None)(self._openapi), methods=["GET"]),
            Route(
                RUN_PREFIX + "/{model_id:path}",
                endpoint("run", key_auth)(self._run),
                methods=["POST"],
            ),
            Route("/{model_id:path}", endpoint("submit", key_auth)(self._submit), methods=["POST"]),
        ]

    async def _accepted(
        self, request: Request, call: Call
    ) -> tuple[str, Family, dict[str, Any]] | Response:
        """The model, its family and the input, as fal takes them; or fal's refusal (404 for
        an unknown model, 422 for an input its schema does not allow)."""
        model_id = call.model_id = request.path_params["model_id"].strip("/")
        family = family_of(model_id)
        if len(model_id.split("/")) < 2 or family is None or retired(model_id):
            return detail(404, f"Application '{model_id}' not found")
        raw = await request.body()
        try:
            arguments = json.loads(raw)
        except ValueError as exc:
            return _validation_error(
                "json_invalid", f"JSON decode error: {exc}", raw.decode(errors="replace")
            )
        if not isinstance(arguments, dict):
            return _validation_error(
                "model_attributes_type",
                "Input should be a valid dictionary or object to extract fields from",
                arguments,
            )
        call.body = arguments
        call.headers = {
            name: value for name, value in request.headers.items() if name.startswith("x-fal-")
        }
        if problems := input_problems(model_id, arguments):
            return JSONResponse({"detail": problems}, 422)
        return model_id, family, arguments

    async def _run(self, request: Request, call: Call) -> Response:
        """fal.run: the model runs while the caller waits, and its output is the answer; a
        failure is the app's error status (fal does not retry synchronous calls)."""
        accepted = await self._accepted(request, call)
        if isinstance(accepted, Response):
            return accepted
        model_id, family, arguments = accepted
        request_id = call.request_id = str(uuid.uuid4())
        latency = self._settings.current.latency_for(model_id, family.name)
        await asyncio.sleep(latency)
        work = Work(request_id, model_id, arguments, base_url(request, self._public_url), latency)
        try:
            output = await family.run(self._workshop, work)
        except ModelError as exc:
            error_type = exc.item["type"]
            return JSONResponse(
                {"detail": [exc.item]}, 422, headers={"X-Fal-Error-Type": error_type}
            )
        return JSONResponse(output, headers={"x-fal-request-id": request_id})

    async def _submit(self, request: Request, call: Call) -> Response:
        accepted = await self._accepted(request, call)
        if isinstance(accepted, Response):
            return accepted
        model_id, family, arguments = accepted
        segments = model_id.split("/")
        request_id = call.request_id = str(uuid.uuid4())
        job = Job(
            request_id=request_id,
            gateway_request_id=str(uuid.uuid4()),
            model_id=model_id,
            family=family,
            app_path="/".join(segments[:2]),
            arguments=arguments,
            webhook_url=request.query_params.get("fal_webhook"),
            base_url=base_url(request, self._public_url),
            headers=call.headers or {},
        )
        self.jobs[request_id] = job
        position = len(self._waiting)
        self._waiting.append(job)
        self._admit()
        if job.state is State.IN_QUEUE and (timeout := _start_timeout(request)) is not None:
            job.deadline = asyncio.get_running_loop().call_later(timeout, self._expire, job)
        body = {
            "request_id": request_id,
            "gateway_request_id": job.gateway_request_id,
            **job.urls(),
        }
        return JSONResponse(
            {**body, "queue_position": position}, headers={"x-fal-request-id": request_id}
        )

    async def _openapi(self, request: Request, call: Call) -> Response:
        """fal's published schema of one endpoint, public like fal's (no key)."""
        model_id = call.model_id = request.query_params.get("endpoint_id", "").strip("/")
        document = openapi(model_id)
        if document is None:
            return detail(404, f"Endpoint '{model_id}' not found")
        return JSONResponse(document)

    def _job(self, request: Request, call: Call) -> Job | None:
        params = request.path_params
        job = self.jobs.get(params["request_id"])
        if job is None or job.app_path != f"{params['owner']}/{params['app']}":
            return None
        call.request_id, call.model_id = job.request_id, job.model_id
        return job

    async def _status(self, request: Request, call: Call) -> Response:
        job = self._job(request, call)
        if job is None:
            return detail(404, "Request not found")
        body: dict[str, Any] = {
            "status": job.state,
            "request_id": job.request_id,
            **job.urls(),
            "logs": None,
        }
        if request.query_params.get("logs", "").lower() in {"1", "true"}:
            stamp = datetime.now(UTC).isoformat()
            body["logs"] = [
                {
                    "message": f"sandbox: {job.state}",
                    "level": "INFO",
                    "source": "user",
                    "timestamp": stamp,
                }
            ]
        if job.state is State.IN_QUEUE:
            return JSONResponse({**body, "queue_position": self._waiting.index(job)}, 202)
        if job.state is State.IN_PROGRESS:
            return JSONResponse(body, 202)
        body |= {"status": State.COMPLETED, "metrics": {"inference_time": job.latency}}
        failure = _CANCELLED if job.state is State.CANCELLED else job.failure
        if failure is not None:
            body |= {"error": failure.error, "error_type": failure.error_type}
        return JSONResponse(body)

    async def _result(self, request: Request, call: Call) -> Response:
        job = self._job(request, call)
        if job is None:
            return detail(404, "Request not found")
        if job.state in (State.IN_QUEUE, State.IN_PROGRESS):
            return detail(400, "Request is still in progress")
        failure = _CANCELLED if job.state is State.CANCELLED else job.failure
        if failure is not None:
            return JSONResponse(failure.payload, failure.status, headers=failure.headers)
        return JSONResponse(job.output)

    async def _cancel(self, request: Request, call: Call) -> Response:
        job = self._job(request, call)
        if job is None:
            return JSONResponse({"status": "NOT_FOUND"}, 404)
        if job.state in (State.COMPLETED, State.CANCELLED):
            return JSONResponse({"status": "ALREADY_COMPLETED"}, 400)
        if job.state is State.IN_QUEUE or self._settings.current.running_apps_stop_on_cancel:
            self._release(job, State.CANCELLED)
        return JSONResponse({"status": "CANCELLATION_REQUESTED"}, 202)

    def _admit(self) -> None:
        """fal counts only requests in progress against the concurrency limit; the rest wait."""
        limit = self._settings.current.max_concurrency
        while self._waiting and (limit is None or self._running < limit):
            job = self._waiting.popleft()
            if job.deadline is not None:
                job.deadline.cancel()
            job.state, job.started_at = State.IN_PROGRESS, time.time()
            job.latency = self._settings.current.latency_for(job.model_id, job.family.name)
            job.timer = asyncio.get_running_loop().call_later(job.latency, self._spawn, job)
            self._running += 1

    def _spawn(self, job: Job) -> None:
        job.timer = None
        job.task = self._background(self._finish(job))

    def _background(self, work: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _finish(self, job: Job) -> None:
        work = Work(job.request_id, job.model_id, job.arguments, job.base_url, job.latency)
        try:
            job.output = await job.family.run(self._workshop, work)
        except ModelError as exc:
            error_type = exc.item["type"]
            job.failure = Failure(
                422,
                {"detail": [exc.item]},
                "Invalid status code: 422",
                error_type,
                {"X-Fal-Error-Type": error_type},
            )
        except Exception:
            log.exception("sandbox fal: %s failed", job.model_id)
            job.failure = Failure(
                500,
                {"detail": "Internal server error"},
                "Invalid status code: 500",
                "internal_error",
            )
        job.task = None
        self._release(job, State.COMPLETED)
        await self._notify(job)

    def _expire(self, job: Job) -> None:
        """X-Fal-Request-Timeout: a request that has not started by then fails with a 504."""
        job.failure = Failure(
            504,
            {"detail": "Request timed out before it started", "error_type": "request_timeout"},
            "Invalid status code: 504",
            "request_timeout",
            {"X-Fal-Request-Timeout-Type": "user", "X-Fal-Error-Type": "request_timeout"},
        )
        self._release(job, State.COMPLETED)
        self._background(self._notify(job))

    def _release(self, job: Job, state: State) -> None:
        """Leave the queue or a concurrency slot, stop every timer, let the next request in."""
        if job.state is State.IN_QUEUE:
            self._waiting.remove(job)
        else:
            self._running -= 1
        for handle in (job.timer, job.deadline, job.task):
            if handle is not None:
                handle.cancel()
        job.timer = job.deadline = job.task = None
        job.state, job.finished_at = state, time.time()
        self._finished.append(job.request_id)
        while len(self.jobs) > _JOB_LIMIT and self._finished:
            self.jobs.pop(self._finished.popleft(), None)
        self._admit()

    async def _notify(self, job: Job) -> None:
        config = self._settings.current
        if job.webhook_url is None or config.webhook_drop:
            return
        await asyncio.sleep(config.webhook_delay)
        await self.deliver(job, config.webhook_copies)

    async def deliver(self, job: Job, copies: int) -> list[int | None]:
        if job.webhook_url is None:
            return []
        return await self._webhooks.deliver(
            job.request_id, job.webhook_url, job.webhook_body(), copies
        )

    def reset(self) -> None:
        for job in [
            *self._waiting,
            *(j for j in self.jobs.values() if j.state is State.IN_PROGRESS),
        ]:
            self._release(job, State.CANCELLED)
        for task in self._tasks:
            task.cancel()
        self.jobs.clear()
        self._finished.clear()
