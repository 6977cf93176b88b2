"""/_sandbox: what tests use to look inside the stand-in and to bend it (never part of fal)."""

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from sandbox.fal.calls import CallLog, Fault, Faults, detail
from sandbox.fal.config import Settings
from sandbox.fal.queue import FalQueue, State
from sandbox.fal.storage import FileStore, Storage
from sandbox.fal.webhooks import USER_ID, Signer

M = TypeVar("M", bound=BaseModel)
Endpoint = Callable[[Request], Awaitable[Response]]


class _SignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str
    request_id: str
    user_id: str = USER_ID
    timestamp: int | str | None = None
    forged: bool = False


class _Redelivery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    copies: int = Field(default=1, ge=1)


class _BadRequest(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


async def _json(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise _BadRequest(detail(400, f"Body is not JSON: {exc}")) from exc


def _parse(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _BadRequest(_invalid(exc)) from exc


def _invalid(exc: ValidationError) -> JSONResponse:
    return JSONResponse({"detail": json.loads(exc.json(include_url=False))}, 422)


def _guarded(handler: Endpoint) -> Endpoint:
    """Lets parsing raise _BadRequest from deep inside a handler instead of threading it back."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except _BadRequest as exc:
            return exc.response

    return endpoint


class Control:
    def __init__(
        self,
        settings: Settings,
        calls: CallLog,
        faults: Faults,
        queue: FalQueue,
        storage: Storage,
        files: FileStore,
        signer: Signer,
    ) -> None:
        self._settings = settings
        self._calls = calls
        self._faults = faults
        self._queue = queue
        self._storage = storage
        self._files = files
        self._signer = signer

    def mount(self) -> Mount:
        routes = [
            Route("/requests", self._requests, methods=["GET"]),
            Route("/jobs/{request_id}", self._job, methods=["GET"]),
            Route("/jobs/{request_id}/webhook", _guarded(self._redeliver), methods=["POST"]),
            Route("/config", _guarded(self._config), methods=["GET", "POST"]),
            Route("/faults", _guarded(self._faults_endpoint), methods=["GET", "POST", "DELETE"]),
            Route("/sign", _guarded(self._sign), methods=["POST"]),
            Route("/reset", self._reset, methods=["POST"]),
        ]
        return Mount("/_sandbox", routes=routes)

    async def _requests(self, request: Request) -> Response:
        params = request.query_params
        kinds = {kind for value in params.getlist("kind") for kind in value.split(",") if kind}
        try:
            since = int(params.get("since", "0"))
        except ValueError:
            return detail(400, "since must be an integer")
        return JSONResponse(self._calls.select(kinds, params.get("request_id"), since))

    async def _job(self, request: Request) -> Response:
        job = self._queue.jobs.get(request.path_params["request_id"])
        if job is None:
            return detail(404, "Request not found")
        webhook_calls = self._calls.select({"webhook"}, job.request_id, 0)
        return JSONResponse({**job.view(), "webhook_calls": webhook_calls})

    async def _redeliver(self, request: Request) -> Response:
        job = self._queue.jobs.get(request.path_params["request_id"])
        if job is None:
            return detail(404, "Request not found")
        if job.state is not State.COMPLETED or job.webhook_url is None:
            return detail(409, "Only a finished request submitted with fal_webhook has a webhook")
        copies = _parse(_Redelivery, await _json(request)).copies
        return JSONResponse({"statuses": await self._queue.deliver(job, copies)})

    async def _config(self, request: Request) -> Response:
        if request.method == "POST":
            patch = await _json(request)
            if not isinstance(patch, dict):
                return detail(422, "config patch must be an object")
            try:
                self._settings.merge(patch)
            except ValidationError as exc:
                return _invalid(exc)
        return JSONResponse(self._settings.current.model_dump())

    async def _faults_endpoint(self, request: Request) -> Response:
        if request.method == "POST":
            self._faults.add(_parse(Fault, await _json(request)))
        elif request.method == "DELETE":
            self._faults.clear()
        return JSONResponse(self._faults.as_json())

    async def _sign(self, request: Request) -> Response:
        sign = _parse(_SignRequest, await _json(request))
        timestamp = None if sign.timestamp is None else str(sign.timestamp)
        headers = self._signer.headers(
            sign.request_id,
            sign.body.encode(),
            user_id=sign.user_id,
            timestamp=timestamp,
            forged=sign.forged,
        )
        return JSONResponse({"headers": headers})

    async def _reset(self, _: Request) -> Response:
        self._queue.reset()
        self._calls.clear()
        self._faults.clear()
        self._settings.reset()
        self._storage.clear()
        await self._files.clear()
        return JSONResponse({"ok": True})
