"""Inline mode end to end: `@bot words` answered from the user's own delivered results, as
Telegram's copies of the files, with a button into the chat carrying the words as a prompt."""

from __future__ import annotations

import asyncio
import base64

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.domain.models import Job, JobStatus
from sandbox.control import Record, TelegramSandbox

ANN, BOB = 5301, 5302


async def delivered(db: AsyncEngine, user_id: int, count: int) -> list[Job]:
    """The user's jobs once `count` are delivered (the file ids are recorded with the move)."""
    for _ in range(400):
        async with db.connect() as connection:
            rows = (
                await connection.execute(
                    select(Job).where(Job.user_id == user_id, Job.status == JobStatus.DELIVERED)
                )
            ).all()
        if len(rows) >= count:
            return rows  # type: ignore[return-value]
        await asyncio.sleep(0.05)
    raise AssertionError(f"{user_id} has fewer than {count} delivered jobs")


def answer_to(telegram: TelegramSandbox, query_id: str) -> Record:
    [answer] = [
        r
        for r in telegram.wait_for("answerInlineQuery", count=1, timeout=30)
        if r["params"]["inline_query_id"] == query_id
    ]
    assert answer["status"] == 200, answer["response"]
    return answer


async def test_an_inline_query_lists_only_that_users_matching_results(
    telegram: TelegramSandbox, db: AsyncEngine
) -> None:
    telegram.send_message(ANN, "a red fox in the snow")
    telegram.send_message(ANN, "a lighthouse at dawn")
    telegram.send_message(BOB, "a red fox on a roof")
    ann_jobs = await delivered(db, ANN, 2)
    await delivered(db, BOB, 1)
    [fox] = [job for job in ann_jobs if "fox" in job.prompt]

    query_id = telegram.inline_query(ANN, "Red FOX")["inline_query_id"]
    params = answer_to(telegram, query_id)["params"]

    assert [r["photo_file_id"] for r in params["results"]] == fox.result["telegram_file_ids"]
    assert [r["type"] for r in params["results"]] == ["photo"]
    assert params["results"][0]["caption"] == "a red fox in the snow"
    assert params["is_personal"] is True
    assert params["cache_time"] <= 60
    parameter = params["button"]["start_parameter"]
    assert parameter.startswith("p_")
    encoded = parameter.removeprefix("p_")
    assert base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode() == "Red FOX"


async def test_the_inline_button_offers_the_words_as_a_ready_prompt(
    telegram: TelegramSandbox,
) -> None:
    words = "a very long prompt about a castle on a hill under a purple sky, in watercolour"
    query_id = telegram.inline_query(ANN, words)["inline_query_id"]
    parameter = answer_to(telegram, query_id)["params"]["button"]["start_parameter"]
    assert len(parameter) <= 64

    telegram.send_message(ANN, f"/start {parameter}")
    [offer] = telegram.wait_for("sendMessage", chat_id=ANN, timeout=30)
    [[button]] = offer["params"]["reply_markup"]["keyboard"]
    assert words.startswith(button["text"])
    assert len(button["text"]) > 30
    assert button["text"] in offer["params"]["text"]
