"""A result Telegram will not take as a photo still reaches the user: a phone photo of
4000×3000 retouched by the upscaler, end to end through the real submit and delivery tasks,
the fal stand-in (which upscales as fal does: twice the input a side) and the Telegram
stand-in (which refuses a photo as Telegram does: width + height over 10,000, a ratio over
20, over 10 MB uploaded, over 5 MB by URL). Only fal's webhook is played by the test: it
records the result as the api would."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.types import BufferedInputFile
from PIL import Image

from core.domain.catalog import catalog
from core.domain.models import Job, new_job_id
from core.domain.users import touch_user
from core.fal.client import FalWebhook
from core.infra.config import Config
from core.infra.db import create_engine, session_factory
from core.jobs import lifecycle
from core.jobs.fal_result import record_fal_result
from core.jobs.queries import get_job, new_job
from core.resources import Resources, create_redis
from core.telegram.limits import TelegramLimiter
from core.telegram.outbox import Outbox
from sandbox.redis_server import PrivateRedis
from sandbox.telegram.testing import StandIn
from workers.delivery import deliver_job
from workers.services import Services
from workers.submission import submit_job

TOKEN = "42:TESTTESTTESTTESTTESTTEST"
CHAT = 5150
UPSCALER = "fal-ai/clarity-upscaler"


@pytest.fixture
async def fal(local_fal: str) -> AsyncIterator[str]:
    """The module's fal stand-in, its webhooks dropped: the test plays fal's webhook."""
    async with httpx.AsyncClient(base_url=f"{local_fal}/_sandbox") as control:
        await control.post("/config", json={"webhook_drop": True})
        yield local_fal
        await control.post("/reset")


@pytest.fixture
async def services(
    migrated_url: str, own_redis: PrivateRedis, local_telegram: StandIn, fal: str
) -> AsyncIterator[Services]:
    config = Config(
        PUBLIC_URL="https://kadr.test",
        FAL_KEY="test-key",
        FAL_QUEUE_URL=fal,
        FAL_REST_URL=fal,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=local_telegram.url,
    )
    engine = create_engine(migrated_url)
    redis = create_redis(own_redis.url)
    async with (
        httpx.AsyncClient() as http,
        Bot(TOKEN, session=AiohttpSession(api=local_telegram.api)) as bot,
    ):
        resources = Resources(
            config=config,
            engine=engine,
            sessions=session_factory(engine),
            redis=redis,
            http=http,
            outbox=Outbox(bot),
            limiter=TelegramLimiter(redis),
        )
        yield Services.build(resources)
    await redis.flushdb()
    await redis.aclose()
    await engine.dispose()


def phone_photo(size: tuple[int, int] = (4000, 3000)) -> bytes:
    """A camera's JPEG: a gradient with sensor noise, so it compresses as photos do."""
    gradient = Image.linear_gradient("L").resize(size)
    noise = Image.effect_noise(size, 24)
    picture = Image.merge("RGB", (gradient, noise, Image.blend(gradient, noise, 0.5)))
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=90)
    return out.getvalue()


async def retouch_job(services: Services, file_id: str) -> Job:
    """The job the bot makes when the user sends the photo as a file and picks the upscaler."""
    sessions = services.resources.sessions
    async with sessions() as session:
        await touch_user(session, user_id=CHAT, username=None, first_name=None, language_code="en")
    model = catalog().find(UPSCALER)
    assert model is not None
    job = new_job(
        job_id=new_job_id(),
        update_id=None,
        user_id=CHAT,
        chat_id=CHAT,
        language="en",
        model=model,
        prompt="",
        options={"image_file_id": file_id},
    )
    assert await lifecycle.accept(sessions, job)
    return job


async def fal_finishes(services: Services, job: Job) -> None:
    """fal's webhook, as the api records it, once fal says the request is done."""
    assert job.fal_status_url and job.fal_response_url and job.fal_request_id
    async with asyncio.timeout(60):
        while True:
            if (await services.fal.status(job.fal_status_url)).completed:
                break
            await asyncio.sleep(0.1)
    payload = await services.fal.result(job.fal_response_url)
    webhook = FalWebhook(request_id=job.fal_request_id, status="OK", payload=payload)
    await record_fal_result(services.resources, webhook, job.id)


async def stored(services: Services, job: Job) -> Job:
    async with services.resources.sessions() as session:
        found = await get_job(session, job.id)
    assert found is not None
    return found


async def test_a_phone_photo_through_the_upscaler_reaches_the_user(
    services: Services, local_telegram: StandIn, fal: str
) -> None:
    # The user's photo, as a file: sent to the stand-in's chat as if they had.
    photo = BufferedInputFile(phone_photo(), "IMG_0001.jpg")
    sent = await services.resources.outbox.notice.send_document(CHAT, photo)
    assert sent.document is not None
    job = await retouch_job(services, sent.document.file_id)

    await submit_job(services, job.id, attempt=1)
    job = await stored(services, job)
    await fal_finishes(services, job)
    await deliver_job(services, job.id, attempt=1)

    [_, *sends] = await local_telegram.requests(chat_id=CHAT)
    assert [(send["method"], send["response"]["ok"]) for send in sends] == [("sendDocument", True)]
    delivered = await stored(services, job)
    assert delivered.status == "delivered", delivered.error_detail
    assert delivered.result is not None
    image: dict[str, Any] = delivered.result["image"]
    assert image["width"] + image["height"] <= 10_000  # the catalog's cap on the input
    [result] = sends
    message = result["response"]["result"]
    assert "Clarity Upscaler" in result["params"]["caption"]
    assert result["params"]["reply_markup"]["inline_keyboard"]
    document = message["document"]
    assert delivered.result["telegram_file_ids"] == [document["file_id"]]
    assert delivered.result["telegram_file_kinds"] == ["document"]
    assert max(document["thumbnail"]["width"], document["thumbnail"]["height"]) == 320
    async with httpx.AsyncClient() as http:
        upscaled = (await http.get(image["url"])).content
    assert Image.open(io.BytesIO(upscaled)).size == (image["width"], image["height"])
    assert (image["width"], image["height"]) == (5000, 3750)
