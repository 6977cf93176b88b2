"""FalClient against the fal stand-in served over real HTTP."""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pytest

from core.fal.client import (
    FalCancelOutcome,
    FalClient,
    FalFinalError,
    FalModelNotFound,
    FalRetryableError,
    FalSubmission,
    InvalidFalWebhook,
    parse_webhook,
)

KEY = "kadr-secret-fal-key-0123456789"
MODEL = "fal-ai/flux/schnell"
HOOK = "https://kadr.example/webhooks/fal?job=j-1"
PATIENCE = 10.0
T = TypeVar("T")


class Control:
    def __init__(self, http: httpx.AsyncClient, base: str) -> None:
        self.http = http
        self.base = base

    async def post(self, path: str, body: Any = None) -> Any:
        return (await self.http.post(f"{self.base}/_sandbox{path}", json=body or {})).json()

    async def calls(self, kind: str) -> list[dict[str, Any]]:
        return list(
            (await self.http.get(f"{self.base}/_sandbox/requests", params={"kind": kind})).json()
        )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
async def control(local_fal: str, http: httpx.AsyncClient) -> Control:
    sandbox = Control(http, local_fal)
    await sandbox.post("/reset")
    return sandbox


@pytest.fixture
def client(local_fal: str, http: httpx.AsyncClient, control: Control) -> FalClient:
    return FalClient(http, key=KEY, queue_url=local_fal, rest_url=local_fal)


async def eventually(probe: Callable[[], Awaitable[T | None]]) -> T:
    async with asyncio.timeout(PATIENCE):
        while True:
            if (value := await probe()) is not None:
                return value
            await asyncio.sleep(0.02)


async def finished(client: FalClient, submission: FalSubmission) -> Any:
    async def probe() -> Any:
        status = await client.status(submission.status_url)
        return status if status.completed else None

    return await eventually(probe)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_submit_returns_the_urls_fal_hands_out(client: FalClient, control: Control) -> None:
    submission = await client.submit(MODEL, {"prompt": "a cat"}, webhook_url=HOOK)
    assert submission.status_url.endswith(f"/fal-ai/flux/requests/{submission.request_id}/status")
    assert submission.response_url.endswith(f"/fal-ai/flux/requests/{submission.request_id}")
    assert submission.cancel_url.endswith(f"/fal-ai/flux/requests/{submission.request_id}/cancel")
    assert submission.queue_position == 0
    [call] = await control.calls("submit")
    assert call["body"] == {"prompt": "a cat"}
    assert call["url"].endswith("?fal_webhook=" + quote(HOOK, safe=""))


async def test_status_moves_from_queue_to_completed(client: FalClient, control: Control) -> None:
    await control.post(
        "/config",
        {
            "max_concurrency": 1,
            "latency": {"fal-ai/flux/dev": 30},
            "running_apps_stop_on_cancel": True,
        },
    )
    first = await client.submit("fal-ai/flux/dev", {"prompt": "one"}, webhook_url=HOOK)
    second = await client.submit(MODEL, {"prompt": "two"}, webhook_url=HOOK)
    assert (await client.status(first.status_url)).status == "IN_PROGRESS"
    queued = await client.status(second.status_url)
    assert queued.status == "IN_QUEUE"
    await client.cancel(first.cancel_url)
    done = await finished(client, second)
    assert done.completed
    result = await client.result(second.response_url)
    assert result["prompt"] == "two"
    assert result["images"][0]["content_type"] == "image/png"


async def test_a_failed_request_raises_final_with_its_error_type(client: FalClient) -> None:
    submission = await client.submit(MODEL, {"prompt": "nope [content_policy]"}, webhook_url=HOOK)
    assert (await finished(client, submission)).completed
    with pytest.raises(FalFinalError) as caught:
        await client.result(submission.response_url)
    assert (caught.value.status, caught.value.error_type) == (422, "content_policy_violation")
    assert "content checker" in str(caught.value)


async def test_a_result_asked_for_too_early_is_retryable(
    client: FalClient, control: Control
) -> None:
    await control.post("/config", {"latency": 30})
    submission = await client.submit(MODEL, {"prompt": "slow"}, webhook_url=HOOK)
    with pytest.raises(FalRetryableError) as caught:
        await client.result(submission.response_url)
    assert caught.value.status == 400


async def test_cancels_documented_answers_are_outcomes(client: FalClient, control: Control) -> None:
    await control.post("/config", {"latency": 30, "max_concurrency": 1})
    running = await client.submit(MODEL, {"prompt": "running"}, webhook_url=HOOK)
    queued = await client.submit(MODEL, {"prompt": "cancel me"}, webhook_url=HOOK)
    assert await client.cancel(queued.cancel_url) is FalCancelOutcome.REQUESTED
    assert await client.cancel(queued.cancel_url) is FalCancelOutcome.ALREADY_COMPLETED
    unknown = queued.cancel_url.replace(queued.request_id, "unknown")
    assert await client.cancel(unknown) is FalCancelOutcome.NOT_FOUND
    # In progress, the cancel is a signal: requested, and the request runs on.
    assert await client.cancel(running.cancel_url) is FalCancelOutcome.REQUESTED
    assert (await client.status(running.status_url)).status == "IN_PROGRESS"


async def test_upload_streams_and_reuses_one_token(
    client: FalClient, control: Control, http: httpx.AsyncClient
) -> None:
    first = await client.upload(
        chunks(b"hello ", b"fal"), content_type="text/plain", file_name="a.txt"
    )
    second = await client.upload(
        chunks(b"12345"), content_type="image/png", file_name="b.png", size=5
    )
    assert (await http.get(first)).content == b"hello fal"
    assert (await http.get(second)).content == b"12345"
    assert len(await control.calls("token")) == 1
    uploads = await control.calls("upload")
    assert [u["body"]["size"] for u in uploads] == [9, 5]
    assert all(u["auth"] for u in uploads)


async def test_concurrent_uploads_share_one_token_refresh(
    client: FalClient, control: Control
) -> None:
    await asyncio.gather(
        *(
            client.upload(chunks(b"x" * 10), content_type="image/jpeg", file_name=f"{n}.jpg")
            for n in range(8)
        )
    )
    assert len(await control.calls("token")) == 1


async def test_a_token_near_expiry_is_replaced(
    client: FalClient, control: Control, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sandbox.fal.storage.TOKEN_TTL", timedelta(seconds=60))
    for _ in range(2):
        await client.upload(chunks(b"x"), content_type="image/jpeg", file_name="x.jpg")
    assert len(await control.calls("token")) == 2


async def test_a_refused_token_is_dropped_and_the_next_upload_recovers(
    client: FalClient, control: Control
) -> None:
    await client.upload(chunks(b"x"), content_type="image/jpeg", file_name="x.jpg")
    await control.post("/reset")
    with pytest.raises(FalRetryableError) as caught:
        await client.upload(chunks(b"x"), content_type="image/jpeg", file_name="x.jpg")
    assert caught.value.status == 401
    assert await client.upload(chunks(b"x"), content_type="image/jpeg", file_name="x.jpg")


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 408])
async def test_server_trouble_is_retryable(
    client: FalClient, control: Control, status: int
) -> None:
    await control.post("/faults", {"on": "submit", "status": status})
    with pytest.raises(FalRetryableError) as caught:
        await client.submit(MODEL, {"prompt": "x"}, webhook_url=HOOK)
    assert caught.value.status == status


async def test_refusals_are_final_with_fal_error_type(client: FalClient, control: Control) -> None:
    body = {
        "detail": [
            {"loc": ["body", "image_url"], "msg": "Image too large", "type": "image_too_large"}
        ]
    }
    await control.post("/faults", {"on": "submit", "status": 422, "body": body})
    with pytest.raises(FalFinalError) as caught:
        await client.submit(MODEL, {"prompt": "x"}, webhook_url=HOOK)
    assert (caught.value.status, caught.value.error_type) == (422, "image_too_large")
    await control.post(
        "/faults", {"on": "status", "status": 400, "body": {"detail": "bad", "error_type": "odd"}}
    )
    with pytest.raises(FalFinalError) as final:
        await client.status(f"{control.base}/fal-ai/flux/requests/x/status")
    assert final.value.error_type == "odd"


async def test_the_error_type_header_names_the_error(client: FalClient, control: Control) -> None:
    """fal names an error's kind in `X-Fal-Error-Type`, also where the body does not."""
    await control.post(
        "/faults",
        {
            "on": "result",
            "status": 400,
            "body": {"detail": "Unsupported image format"},
            "headers": {"X-Fal-Error-Type": "image_load_error"},
        },
    )
    with pytest.raises(FalFinalError) as caught:
        await client.result(f"{control.base}/fal-ai/flux/requests/x")
    assert (caught.value.status, caught.value.error_type) == (400, "image_load_error")


async def test_a_model_fal_does_not_have_is_not_found(client: FalClient) -> None:
    with pytest.raises(FalModelNotFound) as caught:
        await client.submit("fal-ai/veo3/fast", {"prompt": "x"}, webhook_url=HOOK)
    assert caught.value.status == 404
    assert "fal-ai/veo3/fast" in caught.value.message


async def test_a_missing_key_is_final(
    local_fal: str, http: httpx.AsyncClient, control: Control
) -> None:
    keyless = FalClient(http, key="", queue_url=local_fal, rest_url=local_fal)
    with pytest.raises(FalFinalError, match="FAL_KEY"):
        await keyless.submit(MODEL, {"prompt": "x"}, webhook_url=HOOK)
    assert await control.calls("submit") == []


async def test_a_rejected_key_is_final(client: FalClient, control: Control) -> None:
    await control.post(
        "/faults", {"on": "submit", "status": 401, "body": {"detail": "No such key"}}
    )
    with pytest.raises(FalFinalError) as caught:
        await client.submit(MODEL, {"prompt": "x"}, webhook_url=HOOK)
    assert (caught.value.status, caught.value.message) == (
        401,
        "fal submit fal-ai/flux/schnell: HTTP 401: No such key",
    )


async def test_transport_errors_are_retryable(http: httpx.AsyncClient) -> None:
    nowhere = FalClient(
        http, key=KEY, queue_url="http://127.0.0.1:9", rest_url="http://127.0.0.1:9"
    )
    with pytest.raises(FalRetryableError) as caught:
        await nowhere.submit(MODEL, {"prompt": "x"}, webhook_url=HOOK)
    assert caught.value.status is None
    with pytest.raises(FalRetryableError):
        await nowhere.upload(chunks(b"x"), content_type="image/png", file_name="x.png")


async def test_the_key_never_shows_in_errors_or_logs(
    client: FalClient, control: Control, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = {"detail": [{"msg": f"Invalid key {KEY}", "type": f"bad_key_{KEY}"}]}
    await control.post("/faults", {"on": "submit", "status": 401, "body": echo})
    await control.post(
        "/faults", {"on": "result", "status": 503, "body": {"detail": f"Key {KEY} upset us"}}
    )
    texts = [repr(client), str(client)]
    for attempt in (
        client.submit(MODEL, {"prompt": "x"}, webhook_url=HOOK),
        client.result(f"{control.base}/fal-ai/flux/requests/x"),
        FalClient(http, key=KEY, queue_url="http://127.0.0.1:9", rest_url="").status(
            "http://127.0.0.1:9/s"
        ),
    ):
        with pytest.raises(Exception) as caught:
            await attempt
        error = caught.value
        texts += [
            str(error),
            repr(error),
            repr(error.__cause__),
            repr(getattr(error, "error_type", "")),
        ]
    texts += [record.getMessage() for record in caplog.records]
    assert all(KEY not in text for text in texts)
    assert "***" in texts[2]


def test_parse_webhook_ok_and_error() -> None:
    ok = parse_webhook(
        b'{"request_id":"r1","gateway_request_id":"g1","status":"OK","payload":{"images":[]}}'
    )
    assert (ok.request_id, ok.status, ok.payload, ok.error_type) == (
        "r1",
        "OK",
        {"images": []},
        None,
    )
    error = parse_webhook(
        b'{"request_id":"r2","status":"ERROR","error":"Invalid status code: 422",'
        b'"payload":{"detail":[{"type":"content_policy_violation","msg":"flagged"}]}}'
    )
    assert (error.status, error.error, error.error_type) == (
        "ERROR",
        "Invalid status code: 422",
        "content_policy_violation",
    )
    infra = parse_webhook(
        b'{"request_id":"r3","status":"ERROR","payload":{"detail":"gone","error_type":"runner_disconnected"}}'
    )
    assert infra.error_type == "runner_disconnected"
    missing = parse_webhook(
        b'{"request_id":"r4","status":"OK","payload":null,"payload_error":"too large"}'
    )
    assert (missing.status, missing.payload) == ("OK", None)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[1]",
        b'{"status":"OK"}',
        b'{"request_id":"","status":"OK"}',
        b'{"request_id":"r"}',
    ],
)
def test_parse_webhook_rejects_malformed_bodies(body: bytes) -> None:
    with pytest.raises(InvalidFalWebhook):
        parse_webhook(body)


async def test_run_answers_in_the_same_call_and_an_unknown_input_is_refused(
    local_fal: str, http: httpx.AsyncClient, control: Control
) -> None:
    """fal.run (the prompt helper's LLM): the output is the answer; openrouter/router takes
    only its published inputs, so a key it does not have is fal's 422, not a silent no-op."""
    client = FalClient(
        http, key=KEY, queue_url=local_fal, rest_url=local_fal, run_url=f"{local_fal}/run"
    )
    chat = {"model": "google/gemini-2.5-flash", "prompt": "кот", "system_prompt": "be brief"}
    answer = await client.run("openrouter/router", chat, http_timeout=5)
    assert answer["output"] == "A detailed, high quality picture of: кот"
    [call] = await control.calls("run")
    assert (call["model_id"], call["body"]) == ("openrouter/router", chat)
    with pytest.raises(FalFinalError) as refused:
        await client.run("openrouter/router", {**chat, "messages": []}, http_timeout=5)
    assert (refused.value.status, refused.value.error_type) == (422, "extra_forbidden")
