"""The Mini App's JSON API in-process, on a migrated PostgreSQL and a real Redis, with
initData signed as the Telegram stand-in signs it: a user reaches their own results only.
Forged or stale initData is 401; valid initData of one user asking for another's item is 404
(the item is "not found" for them, never "forbidden": its existence is not confirmed)."""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace

import httpx
import pytest
from aiogram import Bot
from arq.connections import ArqRedis
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.routes import mini_app
from core.domain.models import Job, JobStatus
from core.domain.users import touch_user
from core.infra.config import Config
from core.jobs import lifecycle
from core.jobs.queries import get_job
from core.resources import create_redis
from core.telegram.limits import TelegramLimiter
from core.telegram.outbox import Outbox
from sandbox.stack import TEST_TOKEN
from sandbox.telegram.state import User as TelegramUser
from sandbox.telegram.web_app import init_data
from tests.builders import a_job
from tests.fake_bot_api import FakeSession

Sessions = async_sessionmaker[AsyncSession]
_people = itertools.count(8101, 2)
OTHER_TOKEN = "987654321:AAE-another-bots-token-0123456789ab"
MAX_AGE = 3600
CONFIG = {"MINI_APP_INIT_DATA_MAX_AGE": MAX_AGE}  # on the config of tests/api/conftest.py


@pytest.fixture
async def people(sessions: Sessions) -> tuple[int, int]:
    """Ann and Bob, new to this test."""
    ann = next(_people)
    async with sessions() as session:
        for user in (ann, ann + 1):
            await touch_user(
                session, user_id=user, username=None, first_name="A", language_code="en"
            )
    return ann, ann + 1


@pytest.fixture
def bot_api() -> FakeSession:
    return FakeSession()


@pytest.fixture
async def client(
    config: Config, sessions: Sessions, arq_redis: ArqRedis, bot_api: FakeSession
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_process(config, sessions, bot_api) as c:
        yield c


@contextlib.asynccontextmanager
async def api_process(
    config: Config, sessions: Sessions, bot_api: FakeSession
) -> AsyncIterator[httpx.AsyncClient]:
    """The gallery as one api process serves it: an app of its own, with its own Redis client
    of `config`'s Redis, as the app's lifespan opens them."""
    redis = create_redis(config.REDIS_URL)
    app = FastAPI()
    mini_app.install(app)
    app.state.resources = SimpleNamespace(
        config=config,
        sessions=sessions,
        redis=redis,
        outbox=Outbox(Bot(TEST_TOKEN, session=bot_api)),
        limiter=TelegramLimiter(redis),
    )
    app.state.mini_app_actions = mini_app.actions_limit(redis)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="https://kadr.example") as c:
            yield c
    finally:
        await redis.aclose()


def signed(user_id: int, *, token: str = TEST_TOKEN, age: int = 0) -> dict[str, str]:
    data = init_data(token, TelegramUser(user_id, "Ann"), auth_date=int(time.time()) - age)
    return {"Authorization": f"tma {data}"}


async def a_result(
    sessions: Sessions, user_id: int, prompt: str, *, sent_as: dict[str, str] | None = None
) -> Job:
    """A delivered picture with the file id Telegram gave for it (a photo's); `sent_as`:
    the file ids and kinds the delivery recorded instead, where the result was delivered
    once kinds were kept."""
    job = a_job(user_id, prompt=prompt)
    assert await lifecycle.accept(sessions, job)
    result = {"images": [{"url": f"https://v3.fal.media/files/{job.id}.png"}]}
    assert await lifecycle.mark_completed(sessions, job.id, result)
    async with sessions() as session:
        job = await get_job(session, job.id)  # type: ignore[assignment]
    telegram: dict[str, list[str]] = (
        {"telegram_file_ids": list(sent_as), "telegram_file_kinds": list(sent_as.values())}
        if sent_as
        else {"telegram_file_ids": [f"AgACAgIAAxkBAA{job.id[:8]}"]}
    )
    assert await lifecycle.mark_delivered(sessions, job, {**result, **telegram})
    job.result = {**result, **telegram}
    return job


async def test_the_gallery_lists_the_users_own_results_newest_first_in_pages(
    client: httpx.AsyncClient, sessions: Sessions, people: tuple[int, int]
) -> None:
    ann, bob = people
    results = [await a_result(sessions, ann, f"ann {n}") for n in range(3)]
    await a_result(sessions, bob, "bob's secret")

    first = (await client.get("/app/api/results?limit=2", headers=signed(ann))).json()
    assert [item["prompt"] for item in first["items"]] == ["ann 2", "ann 1"]
    rest = await client.get(
        "/app/api/results", params={"limit": 2, "before": first["next"]}, headers=signed(ann)
    )
    assert [item["prompt"] for item in rest.json()["items"]] == ["ann 0"]
    assert rest.json()["next"] is None
    assert first["items"][0]["media"] == [results[2].result["images"][0]["url"]]
    assert first["items"][0]["shareable"] is True


@pytest.mark.parametrize(
    ("headers_of", "reason"),
    [
        (lambda user: {}, "no initData"),
        (lambda user: {"Authorization": "Bearer x"}, "no initData"),
        (lambda user: signed(user, token=OTHER_TOKEN), "not signed by Telegram"),
        (lambda user: signed(user, age=MAX_AGE + 60), "too old"),
        (lambda user: signed(user, age=-3600), "in the future"),
    ],
    ids=["missing", "other-scheme", "forged", "stale", "future"],
)
async def test_forged_stale_or_missing_init_data_gets_401_with_the_reason(
    client: httpx.AsyncClient,
    sessions: Sessions,
    people: tuple[int, int],
    headers_of: Callable[[int], dict[str, str]],
    reason: str,
) -> None:
    ann, _ = people
    headers = headers_of(ann)
    job = await a_result(sessions, ann, "ann's")
    for call in (
        client.get("/app/api/results", headers=headers),
        client.get(f"/app/api/results/{job.id}", headers=headers),
        client.post(f"/app/api/results/{job.id}/share", headers=headers),
        client.post(f"/app/api/results/{job.id}/regenerate", headers=headers),
    ):
        response = await call
        assert response.status_code == 401
        assert reason in response.json()["detail"]


async def test_init_data_with_its_user_changed_is_forged(
    client: httpx.AsyncClient, sessions: Sessions, people: tuple[int, int]
) -> None:
    ann, bob = people
    """Ann's genuine initData with Bob's id written in: the hash no longer matches."""
    await a_result(sessions, bob, "bob's")
    genuine = signed(ann)["Authorization"]
    tampered = genuine.replace(f"%22id%22%3A{ann}", f"%22id%22%3A{bob}")
    assert tampered != genuine
    response = await client.get("/app/api/results", headers={"Authorization": tampered})
    assert response.status_code == 401


async def test_a_users_valid_init_data_cannot_reach_another_users_item_404(
    client: httpx.AsyncClient, sessions: Sessions, people: tuple[int, int], bot_api: FakeSession
) -> None:
    ann, bob = people
    """Borrowed: Ann's valid initData asking for Bob's item gets 404 on every route, and
    nothing is prepared, started or charged for it."""
    bobs = await a_result(sessions, bob, "bob's secret")
    as_ann = signed(ann)
    listed = (await client.get("/app/api/results", headers=as_ann)).json()["items"]
    assert bobs.id not in [item["id"] for item in listed]
    for response in (
        await client.get(f"/app/api/results/{bobs.id}", headers=as_ann),
        await client.post(f"/app/api/results/{bobs.id}/share", headers=as_ann),
        await client.post(f"/app/api/results/{bobs.id}/regenerate", headers=as_ann),
    ):
        assert (response.status_code, response.json()) == (404, {"detail": "no such result"})
    assert bot_api.requests == []
    async with sessions() as session:
        assert list(await session.scalars(select(Job).where(Job.user_id == ann))) == []


async def test_share_prepares_the_results_telegram_copy_for_that_user(
    client: httpx.AsyncClient, sessions: Sessions, people: tuple[int, int], bot_api: FakeSession
) -> None:
    ann, _ = people
    job = await a_result(sessions, ann, "a fox")
    bot_api.script.append(
        (200, {"ok": True, "result": {"id": "prep1", "expiration_date": 2_000_000_000}})
    )
    response = await client.post(f"/app/api/results/{job.id}/share", headers=signed(ann))
    assert response.json() == {"prepared_id": "prep1"}
    [call] = bot_api.requests
    assert call.__api_method__ == "savePreparedInlineMessage"
    assert call.user_id == ann
    assert call.result.photo_file_id == job.result["telegram_file_ids"][0]
    assert call.result.caption == "a fox"


async def test_share_offers_the_file_as_the_kind_it_was_delivered_as(
    client: httpx.AsyncClient, sessions: Sessions, people: tuple[int, int], bot_api: FakeSession
) -> None:
    """The kind kept at delivery decides, even for a file id that says nothing of its kind
    (Telegram calls them opaque): a picture sent as a document is shared as one."""
    ann, _ = people
    job = await a_result(sessions, ann, "a wide shore", sent_as={"opaque-id-1": "document"})
    bot_api.script.append(
        (200, {"ok": True, "result": {"id": "prep2", "expiration_date": 2_000_000_000}})
    )
    response = await client.post(f"/app/api/results/{job.id}/share", headers=signed(ann))
    assert response.json() == {"prepared_id": "prep2"}
    [call] = bot_api.requests
    assert (call.result.type, call.result.document_file_id) == ("document", "opaque-id-1")
    assert call.result.title == "a wide shore"


async def test_regenerate_starts_a_new_charged_job_by_the_normal_path(
    client: httpx.AsyncClient, sessions: Sessions, people: tuple[int, int], bot_api: FakeSession
) -> None:
    ann, _ = people
    job = await a_result(sessions, ann, "a fox")
    response = await client.post(f"/app/api/results/{job.id}/regenerate", headers=signed(ann))
    answer = response.json()
    assert answer["started"] is True
    async with sessions() as session:
        again = await get_job(session, answer["job_id"])
    assert again is not None
    assert (again.user_id, again.prompt, again.status) == (ann, "a fox", JobStatus.QUEUED)
    assert again.options["seed"] != job.options.get("seed")
    assert [r.__api_method__ for r in bot_api.requests] == ["sendMessage"]


async def test_share_and_make_again_are_limited_per_user(
    client: httpx.AsyncClient, sessions: Sessions, people: tuple[int, int], bot_api: FakeSession
) -> None:
    """A user's own valid initData cannot turn the api into a Bot API flood: past 20 actions
    a minute they get 429, and another user is not held back by it."""
    ann, bob = people
    job = await a_result(sessions, ann, "a fox")
    prepared = (200, {"ok": True, "result": {"id": "p", "expiration_date": 2_000_000_000}})
    bot_api.script.extend([prepared] * 20)
    answers = [
        (await client.post(f"/app/api/results/{job.id}/share", headers=signed(ann))).status_code
        for _ in range(21)
    ]
    assert answers == [200] * 20 + [429]
    assert len(bot_api.requests) == 20
    bobs = await a_result(sessions, bob, "a cat")
    bot_api.script.append(prepared)
    response = await client.post(f"/app/api/results/{bobs.id}/share", headers=signed(bob))
    assert response.status_code == 200


async def test_the_action_limit_holds_across_api_processes(
    config: Config, sessions: Sessions, arq_redis: ArqRedis, people: tuple[int, int]
) -> None:
    """Two api processes behind nginx, Ann's taps landing on each in turn: the count is
    shared in Redis, so she gets 20 actions a minute in all, not 20 from each."""
    ann, _ = people
    job = await a_result(sessions, ann, "a fox")
    prepared = (200, {"ok": True, "result": {"id": "p", "expiration_date": 2_000_000_000}})
    telegram = [FakeSession(), FakeSession()]
    for bot_api in telegram:
        bot_api.script.extend([prepared] * 10)
    async with (
        api_process(config, sessions, telegram[0]) as first,
        api_process(config, sessions, telegram[1]) as second,
    ):
        answers = [
            (
                await (first, second)[n % 2].post(
                    f"/app/api/results/{job.id}/share", headers=signed(ann)
                )
            ).status_code
            for n in range(21)
        ]
    assert answers == [200] * 20 + [429]
    assert [len(bot_api.requests) for bot_api in telegram] == [10, 10]


async def test_an_action_while_redis_is_down_gets_503_and_reaches_nobody(
    config: Config, sessions: Sessions, people: tuple[int, int], bot_api: FakeSession
) -> None:
    """The action limit is counted in Redis: while Redis is down Share and Make again are
    refused with the reason (the page can say so) rather than failing, nothing is sent or
    started, and the gallery still lists the results."""
    ann, _ = people
    job = await a_result(sessions, ann, "a fox")
    down = config.model_copy(update={"REDIS_URL": "redis://127.0.0.1:1/0"})
    async with api_process(down, sessions, bot_api) as c:
        answers = [
            await c.post(f"/app/api/results/{job.id}/{action}", headers=signed(ann))
            for action in ("share", "regenerate")
        ]
        listed = await c.get("/app/api/results", headers=signed(ann))
    for answer in answers:
        assert answer.status_code == 503
        assert answer.json() == {"detail": "the gallery is unavailable: try again shortly"}
    assert [item["id"] for item in listed.json()["items"]] == [job.id]
    assert bot_api.requests == []
    async with sessions() as session:
        assert await session.scalar(select(func.count()).where(Job.user_id == ann)) == 1
