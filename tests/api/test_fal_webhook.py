"""The fal webhook in-process, on a migrated PostgreSQL and a real Redis, with webhooks signed
by the fal stand-in's own signer: what each hostile or odd webhook gets back, that it changes
nothing and delivers nothing, and that the genuine webhook afterwards still delivers."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api import rate_limits
from api.rate_limits import TOO_MANY
from api.routes import fal
from api.routes.fal import FAL_BODY_LIMIT
from core.domain.models import Job, JobStatus, new_job_id, utcnow
from core.domain.users import touch_user
from core.fal.client import FalSubmission
from core.fal.webhook import FalWebhookVerifier, job_token, job_webhook_url
from core.infra.config import Config
from core.jobs import fal_result, lifecycle
from core.jobs.queries import get_job
from core.jobs.queue import queue_of
from core.telegram.limits import EARLY_RETURN, TelegramLimiter
from sandbox.fal.webhooks import Signer
from sandbox.stack import TEST_TOKEN
from tests.builders import a_job

Sessions = async_sessionmaker[AsyncSession]
USER = 4343
JWKS_URL = "http://fal.test/.well-known/jwks.json"
#: On PostgreSQL: what fal reports is stored at the lengths its columns hold.
pytestmark = pytest.mark.parametrize("database_kind", ["postgresql"], scope="module")


@pytest.fixture(autouse=True)
async def known_user(sessions: Sessions) -> None:
    async with sessions() as session:
        await touch_user(session, user_id=USER, username=None, first_name=None, language_code="en")


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
async def client(
    config: Config, sessions: Sessions, arq_redis: ArqRedis, signer: Signer
) -> AsyncIterator[httpx.AsyncClient]:
    jwks = httpx.MockTransport(lambda _: httpx.Response(200, json=signer.jwks()))
    async with httpx.AsyncClient(transport=jwks) as fal_http:
        app = FastAPI()
        app.include_router(fal.router)
        rate_limits.install(app)
        app.state.resources = SimpleNamespace(
            config=config, sessions=sessions, redis=arq_redis, limiter=TelegramLimiter(arq_redis)
        )
        app.state.verifier = FalWebhookVerifier(fal_http, JWKS_URL)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://kadr.example") as c:
            yield c


async def queued_job(sessions: Sessions) -> Job:
    job = a_job(USER, prompt="a lighthouse")
    assert await lifecycle.accept(sessions, job)
    return job


async def submitted_job(sessions: Sessions, request_id: str) -> Job:
    job = await queued_job(sessions)
    base = f"http://fal.test/requests/{request_id}"
    submission = FalSubmission(request_id, f"{base}/status", base, f"{base}/cancel")
    assert await lifecycle.mark_submitted(sessions, job, submission, check_at=utcnow())
    return job


def result_body(request_id: str, url: str = "https://v3.fal.media/files/a.png") -> bytes:
    return json.dumps(
        {"request_id": request_id, "status": "OK", "payload": {"images": [{"url": url}]}}
    ).encode()


async def post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, Any],
) -> httpx.Response:
    return await client.post(
        url, content=body, headers={**headers, "Content-Type": "application/json"}
    )


async def stored(sessions: Sessions, job: Job) -> Job:
    async with sessions() as session:
        found = await get_job(session, job.id)
    assert found is not None
    return found


async def delivery_enqueued(redis: ArqRedis, job: Job) -> bool:
    return bool(await redis.exists(f"arq:job:deliver:{job.id}"))


async def assert_untouched(sessions: Sessions, redis: ArqRedis, job: Job, status: str) -> None:
    now = await stored(sessions, job)
    assert (now.status, now.result, now.error) == (status, None, None)
    assert now.fal_request_id == job.fal_request_id
    assert not await delivery_enqueued(redis, job)


async def test_a_signed_webhook_for_another_request_changes_nothing_and_the_genuine_one_delivers(
    client: httpx.AsyncClient,
    sessions: Sessions,
    arq_redis: ArqRedis,
    signer: Signer,
    config: Config,
) -> None:
    """Someone with a fal account had fal send a signed "result" of their own request to
    this job's URL (token included, as if it had leaked): the job knows its request, so the
    forgery is ignored; fal's webhook for the job's own request then completes it."""
    own = f"req-{new_job_id()}"
    job = await submitted_job(sessions, own)
    job.fal_request_id = own
    url = job_webhook_url(config, job.id)
    evil = result_body("req-attacker", "https://evil.example/x.png")
    response = await post(client, url, evil, signer.headers("req-attacker", evil))
    assert (response.status_code, response.json()) == (200, {"status": "ignored"})
    await assert_untouched(sessions, arq_redis, job, JobStatus.SUBMITTED)

    genuine = result_body(own)
    response = await post(client, url, genuine, signer.headers(own, genuine))
    assert (response.status_code, response.json()) == (200, {"status": "accepted"})
    done = await stored(sessions, job)
    assert done.status == JobStatus.COMPLETED
    assert done.result == {"images": [{"url": "https://v3.fal.media/files/a.png"}]}
    assert await delivery_enqueued(arq_redis, job)


async def test_a_result_behind_a_backlog_is_queued_to_come_just_before_its_turn(
    client: httpx.AsyncClient,
    sessions: Sessions,
    arq_redis: ArqRedis,
    signer: Signer,
    config: Config,
) -> None:
    """Ninety results are already in line for the next three seconds of the bot's sends: the
    new one's delivery waits in the queue until just before its turn, instead of running now
    only to go back to the queue."""
    limiter = TelegramLimiter(arq_redis)
    for _ in range(90):
        await limiter.place_in_line()
    own = f"req-{new_job_id()}"
    job = await submitted_job(sessions, own)
    body = result_body(own)
    response = await post(client, job_webhook_url(config, job.id), body, signer.headers(own, body))
    assert (response.status_code, response.json()) == (200, {"status": "accepted"})
    due_ms = await arq_redis.zscore(queue_of(job.mode), f"deliver:{job.id}")
    assert due_ms is not None
    ahead = due_ms / 1000 - utcnow().timestamp()
    assert 3.0 - EARLY_RETURN - 0.5 < ahead <= 3.0 - EARLY_RETURN


@pytest.mark.parametrize(
    "query",
    [
        lambda job, config: f"?job={job.id}",
        lambda job, config: f"?job={job.id}&token=",
        lambda job, config: f"?job={job.id}&token={'0' * 32}",
        lambda job, config: f"?job={job.id}&token={job_token(config, new_job_id())}",
        lambda job, config: f"?job={job.id}&token={job_token(config, job.id)[:-1]}",
        lambda job, config: f"?job={job.id}&token={job_token(config, job.id)}x",
        lambda job, config: f"?token={job_token(config, job.id)}",
        lambda job, config: "",
        lambda job, config: f"/{job.id}/{'0' * 32}",
        lambda job, config: f"/{job.id}/{job_token(config, new_job_id())}",
        lambda job, config: f"/{new_job_id()}/{job_token(config, job.id)}",
    ],
    ids=[
        "no-token",
        "empty",
        "zeros",
        "other-jobs",
        "short",
        "long",
        "no-job",
        "bare",
        "path-zeros",
        "path-other-jobs",
        "path-token-of-another",
    ],
)
@pytest.mark.parametrize("known_request", [False, True], ids=["queued", "submitted"])
async def test_a_signed_webhook_without_the_jobs_token_changes_nothing_and_the_genuine_one_delivers(
    client: httpx.AsyncClient,
    sessions: Sessions,
    arq_redis: ArqRedis,
    signer: Signer,
    config: Config,
    query: Any,
    known_request: bool,
) -> None:
    """A job id is no secret (it rides in button data): without the job's token a signed
    webhook is ignored, even for a queued job whose request id nobody knows yet, and even
    when it names the job's own request."""
    own = f"req-{new_job_id()}"
    job = await (submitted_job(sessions, own) if known_request else queued_job(sessions))
    status = JobStatus.SUBMITTED if known_request else JobStatus.QUEUED
    request_id = own if known_request else "req-attacker"
    evil = result_body(request_id, "https://evil.example/x.png")
    url = "/webhooks/fal" + query(job, config)
    response = await post(client, url, evil, signer.headers(request_id, evil))
    assert (response.status_code, response.json()) == (200, {"status": "ignored"})
    job.fal_request_id = own if known_request else None
    await assert_untouched(sessions, arq_redis, job, status)

    genuine = result_body(own)
    response = await post(
        client, job_webhook_url(config, job.id), genuine, signer.headers(own, genuine)
    )
    assert (response.status_code, response.json()) == (200, {"status": "accepted"})
    done = await stored(sessions, job)
    assert (done.status, done.fal_request_id) == (JobStatus.COMPLETED, own)
    assert await delivery_enqueued(arq_redis, job)


async def _away(*_: Any, **__: Any) -> None:
    raise ConnectionRefusedError("connection refused")


@pytest.mark.parametrize(
    ("away", "recorded", "then"),
    [
        ((lifecycle, "mark_completed"), JobStatus.SUBMITTED, "accepted"),
        ((fal_result, "enqueue_deliver"), JobStatus.COMPLETED, "duplicate"),
    ],
    ids=["database-away", "redis-away-after-the-record"],
)
async def test_a_webhook_that_meets_an_outage_is_503_and_fals_next_copy_queues_the_delivery(
    client: httpx.AsyncClient,
    sessions: Sessions,
    arq_redis: ArqRedis,
    signer: Signer,
    config: Config,
    monkeypatch: pytest.MonkeyPatch,
    away: tuple[Any, str],
    recorded: str,
    then: str,
) -> None:
    """fal is told to try again (503, not an unhandled 500), and the copy it sends records
    the result, or finds it recorded and queues its delivery: not left for the sweeper."""
    own = f"req-{new_job_id()}"
    job = await submitted_job(sessions, own)
    body = result_body(own)
    url = job_webhook_url(config, job.id)

    with monkeypatch.context() as patch:
        patch.setattr(*away, _away)
        first = await post(client, url, body, signer.headers(own, body))
    assert first.status_code == 503
    assert (await stored(sessions, job)).status == recorded
    assert not await delivery_enqueued(arq_redis, job)

    again = await post(client, url, body, signer.headers(own, body))
    assert (again.status_code, again.json()) == (200, {"status": then})
    assert await delivery_enqueued(arq_redis, job)


async def test_a_request_submitted_with_the_query_form_still_binds(
    client: httpx.AsyncClient, sessions: Sessions, signer: Signer, config: Config
) -> None:
    """fal keeps the URL it was given: requests in flight across the deploy that moved the
    binding into the path still come back with `?job=&token=`."""
    own = f"req-{new_job_id()}"
    job = await submitted_job(sessions, own)
    body = result_body(own)
    url = f"/webhooks/fal?job={job.id}&token={job_token(config, job.id)}"
    response = await post(client, url, body, signer.headers(own, body))
    assert (response.status_code, response.json()) == (200, {"status": "accepted"})
    assert (await stored(sessions, job)).status == JobStatus.COMPLETED


async def test_the_webhook_url_carries_the_job_and_its_token(config: Config) -> None:
    job_id = new_job_id()
    url = job_webhook_url(config, job_id)
    assert url == f"https://kadr.example/webhooks/fal/{job_id}/{job_token(config, job_id)}"
    assert job_token(config, job_id) != job_token(config, new_job_id())
    other = config.model_copy(update={"TELEGRAM_BOT_TOKEN": TEST_TOKEN + "x"})
    assert job_token(other, job_id) != job_token(config, job_id)
    assert TEST_TOKEN not in url


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Fal-Webhook-Timestamp", b"\xb2"),  # '²' in latin-1, as a server decodes it
        ("X-Fal-Webhook-Timestamp", b"1" * 5000),
        ("X-Fal-Webhook-Timestamp", b"1"),
        ("X-Fal-Webhook-Timestamp", b""),
        ("X-Fal-Webhook-Signature", b"zz"),
        ("X-Fal-Webhook-Request-Id", b"r" * 4000),
    ],
    ids=["superscript-two", "5000-digits", "stale", "empty", "not-hex", "long-id"],
)
async def test_hostile_signature_headers_get_a_generic_401_before_the_body_is_read(
    client: httpx.AsyncClient,
    sessions: Sessions,
    arq_redis: ArqRedis,
    signer: Signer,
    config: Config,
    caplog: pytest.LogCaptureFixture,
    header: str,
    value: bytes,
) -> None:
    """A body over the cap would be a 413 if it were read: the headers are refused first.
    The sender learns nothing of the reason; the log has it."""
    job = await queued_job(sessions)
    body = result_body("req-1")
    headers: dict[str, Any] = {**signer.headers("req-1", body), header: value}
    url = job_webhook_url(config, job.id)
    with caplog.at_level(logging.INFO, logger="api.routes.fal"):
        response = await post(client, url, body + b" " * FAL_BODY_LIMIT, headers)
    assert (response.status_code, response.json()) == (401, {"detail": "invalid signature"})
    assert "fal webhook refused" in caplog.text
    await assert_untouched(sessions, arq_redis, job, JobStatus.QUEUED)


async def test_a_forged_signature_gets_the_same_generic_401(
    client: httpx.AsyncClient,
    sessions: Sessions,
    arq_redis: ArqRedis,
    signer: Signer,
    config: Config,
    caplog: pytest.LogCaptureFixture,
) -> None:
    job = await queued_job(sessions)
    body = result_body("req-1")
    with caplog.at_level(logging.INFO, logger="api.routes.fal"):
        response = await post(
            client,
            job_webhook_url(config, job.id),
            body,
            signer.headers("req-1", body, forged=True),
        )
    assert (response.status_code, response.json()) == (401, {"detail": "invalid signature"})
    assert "matches no fal JWKS key" in caplog.text
    await assert_untouched(sessions, arq_redis, job, JobStatus.QUEUED)


async def test_a_request_id_that_is_another_jobs_changes_nothing(
    client: httpx.AsyncClient,
    sessions: Sessions,
    arq_redis: ArqRedis,
    signer: Signer,
    config: Config,
) -> None:
    """Request ids are unique to a job: one already another job's is ignored with a 200,
    not a unique-constraint 500 that fal would retry."""
    taken = f"req-{new_job_id()}"
    await submitted_job(sessions, taken)
    job = await queued_job(sessions)
    body = result_body(taken)
    response = await post(
        client, job_webhook_url(config, job.id), body, signer.headers(taken, body)
    )
    assert (response.status_code, response.json()) == (200, {"status": "ignored"})
    await assert_untouched(sessions, arq_redis, job, JobStatus.QUEUED)


async def test_concurrent_genuine_and_foreign_webhooks_leave_the_job_with_its_own_request(
    client: httpx.AsyncClient,
    sessions: Sessions,
    arq_redis: ArqRedis,
    signer: Signer,
    config: Config,
) -> None:
    """Before the job knows its request, two signed webhooks with its token race (a double
    submit): exactly one completes it, and the request it records is the one that did."""
    job = await queued_job(sessions)
    url = job_webhook_url(config, job.id)
    ids = (f"a-{job.id}", f"b-{job.id}")
    bodies = {rid: result_body(rid, f"https://v3.fal.media/files/{rid}.png") for rid in ids}
    responses = await asyncio.gather(
        *(post(client, url, body, signer.headers(rid, body)) for rid, body in bodies.items())
    )
    assert sorted(r.json()["status"] for r in responses) in (
        ["accepted", "duplicate"],
        ["accepted", "ignored"],
    )
    done = await stored(sessions, job)
    assert done.fal_request_id in bodies
    assert done.result == json.loads(bodies[done.fal_request_id])["payload"]


def finished(mode: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "kadr_jobs_finished_total", {"mode": mode, "outcome": outcome}
    )
    return value or 0.0


@pytest.mark.parametrize(
    ("error_type", "code"),
    [("t" * 100, "fal_error"), ("content_policy_violation", "content_policy_violation")],
    ids=["100-characters", "known"],
)
async def test_a_fal_error_type_of_any_length_is_stored_as_a_bounded_code(
    client: httpx.AsyncClient,
    sessions: Sessions,
    arq_redis: ArqRedis,
    signer: Signer,
    config: Config,
    error_type: str,
    code: str,
) -> None:
    """PostgreSQL refused a 100-character type in VARCHAR(64) and the webhook looped on 500s;
    now the code is stored, the type is in the detail, and the webhook gets 200."""
    own = f"req-{new_job_id()}"
    job = await submitted_job(sessions, own)
    body = json.dumps(
        {
            "request_id": own,
            "status": "ERROR",
            "error": "Invalid status code: 422\u0000",
            "payload": {"detail": [{"loc": ["body"], "msg": "no", "type": error_type}]},
        }
    ).encode()
    response = await post(client, job_webhook_url(config, job.id), body, signer.headers(own, body))
    assert (response.status_code, response.json()) == (200, {"status": "accepted"})
    failed = await stored(sessions, job)
    assert (failed.status, failed.error) == (JobStatus.FAILED, code)
    assert failed.error_detail is not None and "\x00" not in failed.error_detail
    assert (error_type == code) or failed.error_detail.startswith(error_type)
    assert await delivery_enqueued(arq_redis, job)
    assert finished(job.mode, error_type) == 0.0


async def test_a_long_error_from_fal_is_a_bounded_metric_label(sessions: Sessions) -> None:
    """Failures kadr reports itself with fal's type (a refused submit) count as their code."""
    job = await queued_job(sessions)
    before = finished(job.mode, "fal_error")
    assert await lifecycle.fail(sessions, job, "z" * 300, "refused at submit")
    assert finished(job.mode, "fal_error") == before + 1
    assert finished(job.mode, "z" * 300) == 0.0
    assert (await stored(sessions, job)).error == "fal_error"


@pytest.mark.parametrize("length", [b"\xb2", b"9" * 5000])
async def test_a_content_length_that_is_not_ascii_digits_is_400_not_500(
    client: httpx.AsyncClient,
    sessions: Sessions,
    arq_redis: ArqRedis,
    signer: Signer,
    config: Config,
    length: bytes,
) -> None:
    job = await queued_job(sessions)
    body = result_body("req-1")
    headers = {**signer.headers("req-1", body), "Content-Length": length}
    response = await post(client, job_webhook_url(config, job.id), body, headers)
    assert response.status_code == 400
    await assert_untouched(sessions, arq_redis, job, JobStatus.QUEUED)


@pytest.fixture
def limit_per_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """The address limit's count over a day instead of a second: which requests it refuses
    then does not depend on how fast the test sends them (or on a second's boundary)."""
    monkeypatch.setattr(rate_limits, "FAL_WEBHOOKS_PER_ADDRESS", "300/day")


@pytest.mark.usefixtures("limit_per_day")  # before `client` installs the limit
async def test_a_flood_from_one_address_is_refused_before_anything_is_read(
    client: httpx.AsyncClient,
) -> None:
    answers = [await post(client, "/webhooks/fal?job=x", b"{}", {}) for _ in range(302)]
    assert [a.status_code for a in answers].count(401) == 300
    assert [(a.status_code, a.json()) for a in answers[-2:]] == [(429, {"detail": TOO_MANY})] * 2
