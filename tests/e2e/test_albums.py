"""Albums end to end, on a deployment of its own with two `kadr worker` processes (each
serving every queue and the update inbox): Telegram posts an album as one update per photo,
and whatever order they come in, whichever worker takes them, however often one is posted,
the album is one job, charged once, with every photo at fal."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from core.domain.models import Job, LedgerEntry, Reason
from core.infra.db import create_engine
from sandbox.control import FalSandbox, TelegramSandbox
from sandbox.redis_server import PrivateRedis
from sandbox.stack import Stack
from tests.conftest import deployment, fast_catalog
from tests.e2e.test_modes import buttons, message_id, png

STACK = "album_stack"  # what `telegram` and `fal` control (tests/conftest.py)

USER = 8_850_001


@pytest.fixture(scope="module")
def album_stack(
    tmp_path_factory: pytest.TempPathFactory, own_database_url: str, own_redis: PrivateRedis
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("albums")
    env = {
        "FREE_CREDITS_PER_DAY": "1000",
        "KADR_CATALOG": str(fast_catalog(workdir / "catalog.toml")),
    }
    with deployment(workdir, own_database_url, own_redis.url, env, "--no-fetch-urls") as stack:
        stack.start_worker("worker-b", WORKER_NAME="worker-b")
        yield stack


async def jobs_and_charges(database_url: str, user_id: int) -> tuple[list[Job], list[LedgerEntry]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            jobs = (await connection.execute(select(Job).where(Job.user_id == user_id))).all()
            charges = (
                await connection.execute(
                    select(LedgerEntry).where(
                        LedgerEntry.user_id == user_id, LedgerEntry.reason == Reason.RESERVE
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    return list(jobs), list(charges)  # type: ignore[arg-type]


def test_an_album_of_three_is_one_job_charged_once_with_three_references(
    album_stack: Stack, own_database_url: str, telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    photos = [png(320 + 16 * i, 240) for i in range(3)]
    # The last photo's update first, the middle one posted twice.
    telegram.send_album(USER, photos, caption="the three of us on a beach", order=[2, 0, 1, 1])
    [result] = telegram.wait_for("sendPhoto", chat_id=USER, timeout=60)
    [submit] = [r for r in fal.requests("submit") if r["status"] == 200]
    assert submit["model_id"] == "fal-ai/nano-banana/edit"
    assert submit["body"]["prompt"] == "the three of us on a beach"
    references = submit["body"]["image_urls"]
    assert len(set(references)) == 3
    assert all(url.startswith(fal.base_url + "/cdn/files/") for url in references)
    assert result["params"]["caption"].startswith("the three of us on a beach")
    jobs, charges = asyncio.run(jobs_and_charges(own_database_url, USER))
    assert len(jobs) == 1
    assert len(charges) == 1
    questions = [
        r for r in telegram.requests("sendMessage", USER) if "photo" in r["params"]["text"]
    ]
    assert questions == []


def test_an_album_without_a_caption_is_asked_about_once_then_edited_whole(
    album_stack: Stack, telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    user = USER + 1
    telegram.send_album(user, [png(), png(400, 300), png(300, 400)], order=[1, 2, 0])
    [question] = telegram.wait_for("sendMessage", chat_id=user, timeout=30)
    assert question["params"]["text"] == "What shall I do with these 3 photos?"
    edit = buttons(question)["✏️ Edit this"]
    telegram.press_button(user, message_id(question), edit)
    telegram.wait_for("sendMessage", chat_id=user, count=2)
    telegram.send_message(user, "make it night")
    telegram.wait_for("sendPhoto", chat_id=user, timeout=60)
    [submit] = [r for r in fal.requests("submit") if r["body"].get("prompt") == "make it night"]
    assert len(set(submit["body"]["image_urls"])) == 3
    asked = [
        r
        for r in telegram.requests("sendMessage", user)
        if r["params"]["text"] == question["params"]["text"]
    ]
    assert len(asked) == 1
