"""The fal stand-in, driven over real HTTP the way fal's clients and webhook receivers see it."""

import asyncio
import base64
import binascii
import io
import json
import struct
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
from PIL import Image

from core.fal.webhook import FalWebhookVerifier, InvalidFalSignature, decode_jwk_x
from sandbox.asgi import serve
from sandbox.fal.testing import WebhookReceiver

KEY = "sandbox-test-key-1234"
MODEL = "fal-ai/flux/schnell"
PATIENCE = 10.0
T = TypeVar("T")


@pytest.fixture
async def client(local_fal: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=local_fal, headers={"Authorization": f"Key {KEY}"}
    ) as http:
        await http.post("/_sandbox/reset")
        await http.post("/_sandbox/config", json={"webhook_retry_delay": 0.01})
        yield http


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[WebhookReceiver, str]]:
    hooks = WebhookReceiver()
    async with serve(hooks.app) as base:
        yield hooks, f"{base}/hook"


async def submit(
    client: httpx.AsyncClient, model: str, arguments: Any, webhook: str | None = None
) -> Any:
    params = {"fal_webhook": webhook} if webhook else {}
    response = await client.post(f"/{model}", json=arguments, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def eventually(probe: Callable[[], Awaitable[T | None]]) -> T:
    """Polls until the probe returns something; bounded, so a lost event fails instead of hangs."""
    async with asyncio.timeout(PATIENCE):
        while True:
            if (value := await probe()) is not None:
                return value
            await asyncio.sleep(0.02)


async def completed(client: httpx.AsyncClient, status_url: str) -> Any:
    async def probe() -> Any:
        response = await client.get(status_url)
        return response.json() if response.status_code == 200 else None

    return await eventually(probe)


async def calls(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/_sandbox/requests", params=params)
    return list(response.json())


async def test_every_queue_and_storage_call_needs_a_key(client: httpx.AsyncClient) -> None:
    bare = {"Authorization": ""}
    for method, path in [
        ("POST", "/fal-ai/flux/schnell"),
        ("GET", "/fal-ai/flux/requests/x/status"),
        ("GET", "/fal-ai/flux/requests/x"),
        ("PUT", "/fal-ai/flux/requests/x/cancel"),
        ("POST", "/storage/auth/token"),
    ]:
        response = await client.request(method, path, headers=bare, json={"prompt": "a"})
        assert response.status_code == 401
        assert isinstance(response.json()["detail"], str)
    response = await client.post(
        "/fal-ai/flux/schnell", headers={"Authorization": "Key"}, json={"prompt": "a"}
    )
    assert response.status_code == 401
    await submit(client, "fal-ai/flux/schnell", {"prompt": "a"})
    recorded = await calls(client)
    assert [call["auth"] for call in recorded] == [False] * 5 + [True, True]
    assert KEY not in json.dumps(recorded)


async def test_submit_completes_with_a_signed_webhook(
    client: httpx.AsyncClient, local_fal: str, receiver: tuple[WebhookReceiver, str]
) -> None:
    hooks, hook_url = receiver
    arguments = {
        "prompt": "a lighthouse at dusk",
        "num_images": 2,
        "image_size": "square",
        "seed": 7,
    }
    submission = await submit(client, "fal-ai/flux/schnell", arguments, hook_url)
    assert (
        submission["status_url"]
        == f"{local_fal}/fal-ai/flux/requests/{submission['request_id']}/status"
    )
    assert submission["response_url"].endswith(f"/fal-ai/flux/requests/{submission['request_id']}")
    assert submission["cancel_url"] == submission["response_url"] + "/cancel"
    assert submission["queue_position"] == 0

    delivery = await hooks.next()
    async with httpx.AsyncClient() as http:
        await FalWebhookVerifier(http, f"{local_fal}/.well-known/jwks.json").verify(
            delivery.headers, delivery.body
        )
    webhook = delivery.json()
    assert webhook["request_id"] == submission["request_id"]
    assert webhook["gateway_request_id"] == submission["gateway_request_id"]
    assert webhook["status"] == "OK"
    assert delivery.headers["x-fal-webhook-request-id"] == submission["request_id"]
    assert delivery.headers["x-fal-webhook-user-id"] == "sandbox-user"

    result = await client.get(submission["response_url"])
    assert result.status_code == 200
    assert result.json() == webhook["payload"]
    output = result.json()
    assert output["seed"] == 7
    assert output["has_nsfw_concepts"] == [False, False]
    assert output["prompt"] == arguments["prompt"]
    assert [(i["width"], i["height"], i["content_type"]) for i in output["images"]] == [
        (512, 512, "image/png")
    ] * 2
    picture = await client.get(output["images"][0]["url"], headers={"Authorization": ""})
    assert picture.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(picture.content)).size == (512, 512)

    status = await client.get(submission["status_url"], params={"logs": "1"})
    assert status.status_code == 200
    assert status.json()["status"] == "COMPLETED"
    assert status.json()["metrics"]["inference_time"] >= 0
    assert status.json()["logs"]


async def test_same_prompt_and_seed_render_the_same_picture(client: httpx.AsyncClient) -> None:
    urls = []
    for _ in range(2):
        submission = await submit(client, "fal-ai/flux-pro/v1.1", {"prompt": "twins", "seed": 3})
        await completed(client, submission["status_url"])
        urls.append((await client.get(submission["response_url"])).json()["images"][0]["url"])
    first, second = [(await client.get(url)).content for url in urls]
    assert first == second


async def test_queue_respects_max_concurrency_and_cancel(client: httpx.AsyncClient) -> None:
    await client.post(
        "/_sandbox/config", json={"max_concurrency": 1, "latency": {"fal-ai/flux/dev": 30}}
    )
    running = await submit(client, "fal-ai/flux/dev", {"prompt": "first"})
    waiting = await submit(client, "fal-ai/flux/dev", {"prompt": "second"})
    assert waiting["queue_position"] == 0

    in_progress = await client.get(running["status_url"])
    assert (in_progress.status_code, in_progress.json()["status"]) == (202, "IN_PROGRESS")
    queued = await client.get(waiting["status_url"])
    assert (queued.status_code, queued.json()["status"], queued.json()["queue_position"]) == (
        202,
        "IN_QUEUE",
        0,
    )
    early = await client.get(running["response_url"])
    assert (early.status_code, early.json()) == (400, {"detail": "Request is still in progress"})

    for submission in (waiting, running):
        cancelled = await client.put(submission["cancel_url"])
        assert (cancelled.status_code, cancelled.json()) == (
            202,
            {"status": "CANCELLATION_REQUESTED"},
        )
    again = await client.put(waiting["cancel_url"])
    assert (again.status_code, again.json()) == (400, {"status": "ALREADY_COMPLETED"})
    removed = (await client.get(f"/_sandbox/jobs/{waiting['request_id']}")).json()
    assert (removed["state"], removed["output"]) == ("CANCELLED", None)
    # In progress, a cancel is a signal the model app may ignore: it runs on, and is billed.
    still = (await client.get(f"/_sandbox/jobs/{running['request_id']}")).json()
    assert still["state"] == "IN_PROGRESS"


async def test_a_running_app_that_honours_the_signal_stops(client: httpx.AsyncClient) -> None:
    await client.post(
        "/_sandbox/config",
        json={"latency": {"fal-ai/flux/dev": 30}, "running_apps_stop_on_cancel": True},
    )
    running = await submit(client, "fal-ai/flux/dev", {"prompt": "first"})
    assert (await client.put(running["cancel_url"])).status_code == 202
    job = (await client.get(f"/_sandbox/jobs/{running['request_id']}")).json()
    assert (job["state"], job["output"]) == ("CANCELLED", None)


async def test_cancelled_request_never_sends_its_webhook(
    client: httpx.AsyncClient, receiver: tuple[WebhookReceiver, str]
) -> None:
    """The survivor is slower, so its webhook proves the cancelled one's time has passed."""
    hooks, hook_url = receiver
    await client.post(
        "/_sandbox/config",
        json={"latency": {"fal-ai/flux/dev": 1.0, MODEL: 1.5}, "running_apps_stop_on_cancel": True},
    )
    doomed = await submit(client, "fal-ai/flux/dev", {"prompt": "doomed"}, hook_url)
    assert (await client.put(doomed["cancel_url"])).status_code == 202
    survivor = await submit(client, MODEL, {"prompt": "survivor"}, hook_url)
    assert (await hooks.next()).json()["request_id"] == survivor["request_id"]
    assert await calls(client, kind="webhook", request_id=doomed["request_id"]) == []


async def test_unknown_requests_and_models(client: httpx.AsyncClient) -> None:
    submission = await submit(client, "fal-ai/flux/schnell", {"prompt": "x"})
    wrong_app = submission["status_url"].replace("/fal-ai/flux/", "/fal-ai/other/")
    for url in ("/fal-ai/flux/requests/nope/status", wrong_app):
        assert (await client.get(url)).status_code == 404
    assert (await client.get("/fal-ai/flux/requests/nope")).status_code == 404
    missing = await client.put("/fal-ai/flux/requests/nope/cancel")
    assert (missing.status_code, missing.json()) == (404, {"status": "NOT_FOUND"})
    assert (await client.post("/fal-ai/no-such-model", json={})).status_code == 404


async def test_submit_body_must_be_a_json_object(client: httpx.AsyncClient) -> None:
    for content in (b"[1, 2]", b"not json"):
        response = await client.post("/fal-ai/flux/schnell", content=content)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][0] == "body"


async def test_input_outside_the_models_schema_is_refused_at_submit(
    client: httpx.AsyncClient,
) -> None:
    refused = await client.post(
        "/fal-ai/codeformer",
        json={"upscaling": 2, "fidelity": "high", "image_url": "https://x/a.png", "seed": True},
    )
    assert refused.status_code == 422
    assert [(d["type"], d["loc"][1]) for d in refused.json()["detail"]] == [
        ("extra_forbidden", "upscaling"),
        ("float_type", "fidelity"),
        ("int_type", "seed"),
    ]
    wrong_enum = await client.post(
        "/fal-ai/flux-pro/v1.1", json={"prompt": "a", "safety_tolerance": 2, "output_format": "gif"}
    )
    assert [d["msg"] for d in wrong_enum.json()["detail"]] == [
        "Input should be a valid string",
        "Input should be 'jpeg' or 'png'",
    ]
    missing = await client.post("/fal-ai/flux/schnell", json={"num_images": 2})
    assert missing.json()["detail"][0]["loc"] == ["body", "prompt"]
    assert await calls(client, kind="download") == []


async def test_each_known_models_schema_is_published(client: httpx.AsyncClient) -> None:
    published = await client.get(
        "/api/openapi/queue/openapi.json",
        params={"endpoint_id": "fal-ai/codeformer"},
        headers={"Authorization": ""},
    )
    assert published.status_code == 200
    document = published.json()
    body = document["paths"]["/fal-ai/codeformer"]["post"]["requestBody"]
    reference = body["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][reference.rsplit("/", 1)[1]]
    assert "upscale_factor" in schema["properties"] and "upscaling" not in schema["properties"]
    assert schema["required"] == ["image_url"]
    unknown = await client.get(
        "/api/openapi/queue/openapi.json", params={"endpoint_id": "fal-ai/veo3/fast"}
    )
    assert unknown.status_code == 404
    retired = await client.post("/fal-ai/veo3/fast", json={"prompt": "waves"})
    assert retired.status_code == 404


async def test_content_policy_marker_ends_in_error(
    client: httpx.AsyncClient, receiver: tuple[WebhookReceiver, str]
) -> None:
    hooks, hook_url = receiver
    prompt = "something [content_policy] bad"
    submission = await submit(client, "fal-ai/flux/schnell", {"prompt": prompt}, hook_url)
    webhook = (await hooks.next()).json()
    expected = {
        "detail": [
            {
                "loc": ["body", "prompt"],
                "msg": "The content could not be processed because it contained material flagged"
                " by a content checker.",
                "type": "content_policy_violation",
                "url": "https://docs.fal.ai/errors#content_policy_violation",
                "ctx": {},
                "input": prompt,
            }
        ]
    }
    assert webhook["status"] == "ERROR"
    assert webhook["error"] == "Invalid status code: 422"
    assert webhook["payload"] == expected
    result = await client.get(submission["response_url"])
    assert (result.status_code, result.json()) == (422, expected)
    status = (await client.get(submission["status_url"])).json()
    assert (status["status"], status["error_type"]) == ("COMPLETED", "content_policy_violation")


async def upload(client: httpx.AsyncClient, content: bytes, content_type: str, name: str) -> Any:
    token = (
        await client.post("/storage/auth/token", params={"storage_type": "fal-cdn-v3"}, json={})
    ).json()
    response = await client.post(
        f"{token['base_url']}/files/upload",
        content=content,
        headers={
            "Authorization": f"{token['token_type']} {token['token']}",
            "Content-Type": content_type,
            "X-Fal-File-Name": name,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()


def png(size: tuple[int, int], colour: str = "orange") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_upload_then_download(client: httpx.AsyncClient, local_fal: str) -> None:
    token = (
        await client.post("/storage/auth/token", params={"storage_type": "fal-cdn-v3"}, json={})
    ).json()
    assert (token["token_type"], token["base_url"]) == ("Bearer", f"{local_fal}/cdn")
    assert datetime.fromisoformat(token["expires_at"]) > datetime.now(UTC)

    stored = await upload(client, b"hello fal", "text/plain", "greeting.txt")
    assert stored["access_url"].startswith(f"{local_fal}/cdn/files/")
    assert stored["access_url"].endswith("/greeting.txt")
    assert (stored["file_size"], stored["content_type"], stored["file_name"]) == (
        9,
        "text/plain",
        "greeting.txt",
    )
    download = await client.get(stored["access_url"], headers={"Authorization": ""})
    assert (download.status_code, download.content) == (200, b"hello fal")
    assert download.headers["content-type"].startswith("text/plain")
    assert (await calls(client, kind="upload"))[0]["body"]["size"] == 9


async def test_upload_needs_an_issued_token(client: httpx.AsyncClient, local_fal: str) -> None:
    for authorization in ("", "Bearer made-up", f"Key {KEY}"):
        response = await client.post(
            f"{local_fal}/cdn/files/upload", content=b"x", headers={"Authorization": authorization}
        )
        assert response.status_code == 401


async def test_upload_over_the_cap_is_refused(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sandbox.fal.storage.UPLOAD_LIMIT", 1000)
    token = (await client.post("/storage/auth/token", json={})).json()
    response = await client.post(
        f"{token['base_url']}/files/upload",
        content=b"x" * 5000,
        headers={
            "Authorization": f"Bearer {token['token']}",
            "Content-Type": "application/octet-stream",
        },
    )
    assert response.status_code == 413


async def test_edit_downloads_its_inputs_and_derives_the_output(client: httpx.AsyncClient) -> None:
    first = await upload(client, png((640, 480)), "image/png", "a.png")
    second = await upload(client, png((100, 100), "blue"), "image/png", "b.png")
    kontext = await submit(
        client,
        "fal-ai/flux-pro/kontext",
        {"prompt": "make it night", "image_url": first["access_url"]},
    )
    banana = await submit(
        client,
        "fal-ai/nano-banana/edit",
        {"prompt": "merge", "image_urls": [first["access_url"], second["access_url"]]},
    )
    for submission in (kontext, banana):
        await completed(client, submission["status_url"])
    output = (await client.get(kontext["response_url"])).json()
    image = output["images"][0]
    assert (image["width"], image["height"]) == (640, 480)
    edited = Image.open(io.BytesIO((await client.get(image["url"])).content)).convert("RGB")
    assert edited.size == (640, 480)
    assert edited.getpixel((320, 400)) != (255, 165, 0)
    downloads = await calls(client, kind="download")
    fetched = Counter((d["url"], d["status"]) for d in downloads)
    assert fetched == {(first["access_url"], 200): 2, (second["access_url"], 200): 1}


async def test_retouch_and_upscale_return_one_image(client: httpx.AsyncClient) -> None:
    source = await upload(client, png((300, 200)), "image/png", "face.png")
    for model, size in [("fal-ai/retoucher", (300, 200)), ("fal-ai/clarity-upscaler", (600, 400))]:
        submission = await submit(client, model, {"image_url": source["access_url"]})
        await completed(client, submission["status_url"])
        image = (await client.get(submission["response_url"])).json()["image"]
        assert (image["width"], image["height"], image["content_type"]) == (*size, "image/png")
        content = (await client.get(image["url"])).content
        assert image["file_size"] == len(content)


async def test_unreachable_input_ends_in_file_download_error(
    client: httpx.AsyncClient, local_fal: str
) -> None:
    submission = await submit(
        client, "fal-ai/codeformer", {"image_url": f"{local_fal}/cdn/files/none/missing.png"}
    )
    status = await completed(client, submission["status_url"])
    assert status["error_type"] == "file_download_error"
    result = await client.get(submission["response_url"])
    assert result.status_code == 422
    assert result.json()["detail"][0]["input"] == f"{local_fal}/cdn/files/none/missing.png"


def mp4_boxes(data: bytes) -> list[bytes]:
    boxes, offset = [], 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        boxes.append(kind)
        offset += size
    assert offset == len(data)
    return boxes


async def test_video_is_an_mp4(client: httpx.AsyncClient) -> None:
    source = await upload(client, png((320, 240)), "image/png", "still.png")
    text = await submit(
        client, "fal-ai/veo3.1/fast", {"prompt": "waves", "duration": "4s", "aspect_ratio": "9:16"}
    )
    image = await submit(
        client,
        "fal-ai/kling-video/v2.1/standard/image-to-video",
        {"prompt": "go", "image_url": source["access_url"]},
    )
    for submission in (text, image):
        await completed(client, submission["status_url"])
        video = (await client.get(submission["response_url"])).json()["video"]
        assert (video["content_type"], video["file_name"]) == ("video/mp4", "output.mp4")
        content = (await client.get(video["url"])).content
        assert len(content) == video["file_size"]
        assert mp4_boxes(content) == [b"ftyp", b"moov", b"mdat"]


async def test_image_to_video_needs_an_image(client: httpx.AsyncClient) -> None:
    refused = await client.post(
        "/fal-ai/kling-video/v2.1/standard/image-to-video", json={"prompt": "go"}
    )
    assert refused.status_code == 422
    assert [(d["type"], d["loc"]) for d in refused.json()["detail"]] == [
        ("missing", ["body", "image_url"])
    ]


async def test_faults_answer_the_next_matching_calls(client: httpx.AsyncClient) -> None:
    await client.post("/_sandbox/faults", json={"on": "submit", "times": 2, "status": 503})
    await client.post(
        "/_sandbox/faults", json={"on": "status", "status": 429, "body": {"detail": "slow down"}}
    )
    pending = (await client.get("/_sandbox/faults")).json()
    assert [(f["on"], f["times"]) for f in pending] == [("submit", 2), ("status", 1)]
    for _ in range(2):
        assert (await client.post("/fal-ai/flux/schnell", json={"prompt": "x"})).status_code == 503
    submission = await submit(client, "fal-ai/flux/schnell", {"prompt": "x"})
    limited = await client.get(submission["status_url"])
    assert (limited.status_code, limited.json()) == (429, {"detail": "slow down"})
    await completed(client, submission["status_url"])
    recorded = await calls(client, kind="submit")
    assert [(c["status"], c.get("fault")) for c in recorded] == [
        (503, True),
        (503, True),
        (200, None),
    ]


async def test_delay_only_fault_then_normal_answer(client: httpx.AsyncClient) -> None:
    await client.post("/_sandbox/faults", json={"on": "token", "status": None, "delay": 0.01})
    assert (await client.post("/storage/auth/token", json={})).status_code == 200
    await client.post("/_sandbox/faults", json={"on": "upload"})
    assert (await client.delete("/_sandbox/faults")).json() == []


async def test_webhook_copies_are_identical(
    client: httpx.AsyncClient, receiver: tuple[WebhookReceiver, str]
) -> None:
    hooks, hook_url = receiver
    await client.post("/_sandbox/config", json={"webhook_copies": 3})
    await submit(client, "fal-ai/flux/schnell", {"prompt": "echo"}, hook_url)
    copies = [await hooks.next() for _ in range(3)]
    assert len({delivery.body for delivery in copies}) == 1


async def test_failed_webhooks_are_retried_and_recorded(client: httpx.AsyncClient) -> None:
    hooks = WebhookReceiver(statuses=[500, 503])
    async with serve(hooks.app) as base:
        submission = await submit(
            client, "fal-ai/flux/schnell", {"prompt": "retry"}, f"{base}/hook"
        )
        deliveries = [await hooks.next() for _ in range(3)]
    assert len({d.body for d in deliveries}) == 1
    attempts = await calls(client, kind="webhook", request_id=submission["request_id"])
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, 500), (2, 503), (3, 200)]


async def test_unreachable_webhook_is_retried_then_given_up(client: httpx.AsyncClient) -> None:
    await client.post("/_sandbox/config", json={"webhook_retries": 1})
    submission = await submit(
        client, "fal-ai/flux/schnell", {"prompt": "nobody home"}, "http://127.0.0.1:9/hook"
    )

    async def two_attempts() -> list[dict[str, Any]] | None:
        attempts = await calls(client, kind="webhook", request_id=submission["request_id"])
        return attempts if len(attempts) >= 2 else None

    attempts = await eventually(two_attempts)
    assert [a["attempt"] for a in attempts] == [1, 2]
    assert all(a.get("status") is None and a["error"] for a in attempts)


async def test_dropped_webhook_can_be_redelivered(
    client: httpx.AsyncClient, receiver: tuple[WebhookReceiver, str]
) -> None:
    hooks, hook_url = receiver
    await client.post("/_sandbox/config", json={"webhook_drop": True})
    submission = await submit(client, "fal-ai/flux/schnell", {"prompt": "lost"}, hook_url)
    await completed(client, submission["status_url"])
    assert await calls(client, kind="webhook") == []
    redelivered = await client.post(
        f"/_sandbox/jobs/{submission['request_id']}/webhook", json={"copies": 2}
    )
    assert redelivered.json() == {"statuses": [200, 200]}
    first, second = await hooks.next(), await hooks.next()
    assert first.body == second.body
    assert first.json()["request_id"] == submission["request_id"]


async def test_job_view_shows_input_output_and_webhook(
    client: httpx.AsyncClient, receiver: tuple[WebhookReceiver, str]
) -> None:
    hooks, hook_url = receiver
    submission = await submit(client, "fal-ai/flux/schnell", {"prompt": "inspect"}, hook_url)
    await hooks.next()
    job = (await client.get(f"/_sandbox/jobs/{submission['request_id']}")).json()
    assert (job["state"], job["input"], job["webhook_url"]) == (
        "COMPLETED",
        {"prompt": "inspect"},
        hook_url,
    )
    assert job["output"]["images"]
    assert (await client.get("/_sandbox/jobs/unknown")).status_code == 404


async def test_start_timeout_header_is_recorded_and_enforced(client: httpx.AsyncClient) -> None:
    await client.post("/_sandbox/config", json={"max_concurrency": 1, "latency": 30})
    await submit(client, "fal-ai/flux/schnell", {"prompt": "hog"})
    response = await client.post(
        "/fal-ai/flux/schnell", json={"prompt": "late"}, headers={"X-Fal-Request-Timeout": "0.2"}
    )
    late = response.json()
    assert (await calls(client, kind="submit"))[1]["headers"]["x-fal-request-timeout"] == "0.2"
    status = await completed(client, late["status_url"])
    assert status["error_type"] == "request_timeout"
    result = await client.get(late["response_url"])
    assert (result.status_code, result.headers["x-fal-request-timeout-type"]) == (504, "user")


async def test_config_merges_and_validates(client: httpx.AsyncClient) -> None:
    merged = await client.post(
        "/_sandbox/config",
        json={"latency": {"fal-ai/veo3.1/fast": 2.0}, "distribution": "lognormal", "sigma": 0.3},
    )
    assert merged.json()["latency"] == {"default": 0.05, "fal-ai/veo3.1/fast": 2.0}
    assert (await client.get("/_sandbox/config")).json()["distribution"] == "lognormal"
    assert (
        await client.post("/_sandbox/config", json={"distribution": "uniform"})
    ).status_code == 422
    assert (await client.post("/_sandbox/config", json={"nonsense": 1})).status_code == 422
    assert (await client.get("/_sandbox/config")).json()["sigma"] == 0.3
    await client.post("/_sandbox/reset")
    assert (await client.get("/_sandbox/config")).json()["distribution"] == "fixed"


async def sign(client: httpx.AsyncClient, body: bytes, **extra: Any) -> dict[str, str]:
    request = {"body": body.decode(), "request_id": "req-1", **extra}
    return dict((await client.post("/_sandbox/sign", json=request)).json()["headers"])


async def test_forged_and_stale_signatures_are_rejected(
    client: httpx.AsyncClient, local_fal: str
) -> None:
    body = b'{"request_id":"req-1","status":"OK","payload":{}}'
    async with httpx.AsyncClient() as http:
        verifier = FalWebhookVerifier(http, f"{local_fal}/.well-known/jwks.json")
        await verifier.verify(await sign(client, body), body)
        with pytest.raises(InvalidFalSignature, match="no fal JWKS key"):
            await verifier.verify(await sign(client, body, forged=True), body)
        with pytest.raises(InvalidFalSignature, match="window"):
            await verifier.verify(await sign(client, body, timestamp=int(time.time()) - 301), body)
        with pytest.raises(InvalidFalSignature, match="no fal JWKS key"):
            await verifier.verify(await sign(client, body), body + b" ")


async def test_jwks_x_needs_padding_to_decode(client: httpx.AsyncClient) -> None:
    (key,) = (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert "=" not in key["x"]
    with pytest.raises(binascii.Error):
        base64.urlsafe_b64decode(key["x"])
    assert len(decode_jwk_x(key["x"])) == 32


async def test_recorded_calls_filter_by_kind_and_cursor(client: httpx.AsyncClient) -> None:
    first = await submit(client, "fal-ai/flux/schnell", {"prompt": "one"})
    await completed(client, first["status_url"])
    everything = await calls(client)
    assert [c["kind"] for c in everything][:2] == ["submit", "status"]
    submit_call = everything[0]
    assert submit_call["body"] == {"prompt": "one"}
    assert (submit_call["model_id"], submit_call["request_id"]) == (
        "fal-ai/flux/schnell",
        first["request_id"],
    )
    later = await calls(client, since=str(everything[-1]["seq"]))
    assert later == []
    assert {c["kind"] for c in await calls(client, kind="submit,status")} == {"submit", "status"}
