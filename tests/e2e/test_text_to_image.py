"""Text-to-image end to end: real api and worker processes, Redis, PostgreSQL, and the
Telegram and fal stand-ins over HTTP. Each test reads what a user would see in the chat."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.domain.models import Job
from sandbox.control import FalSandbox, TelegramSandbox, wait_until
from sandbox.stack import Stack

MODEL = "fal-ai/flux/schnell"


def photos_to(telegram: TelegramSandbox, chat_id: int, count: int = 1, timeout: float = 30):
    return telegram.wait_for("sendPhoto", chat_id=chat_id, count=count, timeout=timeout)


async def job_of(db: AsyncEngine, user_id: int) -> Job:
    job = await job_of_or_none(db, user_id)
    assert job is not None, f"no job of user {user_id}"
    return job


async def job_of_or_none(db: AsyncEngine, user_id: int) -> Job | None:
    async with db.connect() as connection:
        row = (await connection.execute(select(Job).where(Job.user_id == user_id))).one_or_none()
    return row  # type: ignore[return-value]


def only_one_photo_before_a_later_one(
    telegram: TelegramSandbox, fal: FalSandbox, chat_id: int, prompt: str
) -> None:
    """The chat's photos once a later prompt's photo has come are the prompt's and the later
    one's: a second photo of the job before (its webhook handled again, its task run again)
    would have come first."""
    fal.configure(latency={"default": 0.2})
    telegram.send_message(chat_id, "later")
    captions = [p["params"]["caption"] for p in photos_to(telegram, chat_id, count=2)]
    assert len(captions) == 2 and captions[0].startswith(prompt), captions
    assert captions[1].startswith("later"), captions


async def test_a_prompt_becomes_a_photo_in_that_chat(
    telegram: TelegramSandbox, fal: FalSandbox, db: AsyncEngine
) -> None:
    telegram.send_message(5001, "a lighthouse at dawn")
    [photo] = photos_to(telegram, 5001)

    [submit] = fal.requests("submit")
    assert submit["model_id"] == MODEL
    assert submit["body"]["prompt"] == "a lighthouse at dawn"
    output_url = fal.job(submit["request_id"])["output"]["images"][0]["url"]
    assert photo["params"]["photo"] == output_url
    assert photo["params"]["caption"].startswith("a lighthouse at dawn")
    assert fal.status_checks([submit]) == []

    status_message = telegram.wait_for("sendMessage", chat_id=5001)[0]
    # Jobs ahead and an ETA show when there are any, and once fal's times for the model are
    # known (earlier tests' jobs).
    lines = status_message["params"]["text"].split("\n")
    assert (lines[0], lines[-1]) == ("⏳ In the queue…", "<i>FLUX.1 [schnell] · 1:1</i>")
    assert all(line.startswith(("👥", "🕒")) for line in lines[1:-1]), lines
    assert status_message["params"]["reply_markup"]["inline_keyboard"][0][0]["text"] == "✖ Cancel"
    [deleted] = telegram.wait_for("deleteMessage", chat_id=5001)
    assert deleted["params"]["message_id"] == status_message["response"]["result"]["message_id"]

    job = await job_of(db, 5001)
    assert (job.status, job.fal_request_id) == ("delivered", submit["request_id"])
    assert job.result["telegram_file_ids"]


def test_image_command_and_bad_prompts(telegram: TelegramSandbox) -> None:
    telegram.send_message(5002, "/image")
    telegram.send_message(5002, "x" * 1001)
    telegram.send_message(5002, "/image a red fox")
    photos_to(telegram, 5002)
    texts = [r["params"]["text"] for r in telegram.requests("sendMessage", 5002)]
    assert texts[0].startswith("✍️ Describe the picture")
    assert texts[1].startswith("✂️ That description is too long: 1001 characters")
    assert len(telegram.requests("sendPhoto", 5002)) == 1


def test_forged_or_stale_fal_webhooks_are_401_and_change_nothing(
    stack: Stack, telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    fal.configure(webhook_drop=True, latency={"default": 0.05})
    telegram.send_message(5003, "a quiet harbour")
    [submit] = fal.wait_for("submit")
    request_id = submit["request_id"]
    job_id = submit["url"].split("job%3D")[-1] if "job%3D" in submit["url"] else None
    body = json.dumps(
        {
            "request_id": request_id,
            "status": "OK",
            "payload": {"images": [{"url": "https://evil.example/x.png"}]},
        }
    )
    url = f"{stack.api_url}/webhooks/fal"
    if job_id:
        url += f"?job={job_id}"
    forged = fal.sign(body, request_id, forged=True)
    stale = fal.sign(body, request_id, timestamp=str(int(time.time()) - 3600))
    unsigned = {"Content-Type": "application/json"}
    for headers in (forged, stale, unsigned):
        response = httpx.post(
            url, content=body, headers={**headers, "Content-Type": "application/json"}
        )
        assert response.status_code == 401, response.text
    fal.resend_webhook(request_id)  # fal's own webhook, after the refused ones
    [photo] = photos_to(telegram, 5003)
    assert "evil.example" not in photo["params"]["photo"]
    assert len(telegram.requests("sendPhoto", 5003)) == 1


def test_the_same_webhook_three_times_gives_one_photo(
    telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    fal.configure(webhook_copies=3)
    telegram.send_message(5004, "three lanterns")
    photos_to(telegram, 5004)
    fal.wait_for("webhook", count=3)
    only_one_photo_before_a_later_one(telegram, fal, 5004, "three lanterns")
    assert all(w["status"] == 200 for w in fal.requests("webhook"))


def test_worker_killed_after_submit_still_delivers_once(
    stack: Stack, telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    fal.configure(latency={"default": 2.0})
    telegram.send_message(5005, "a slow sunrise")
    fal.wait_for("submit")
    stack.service("worker").kill()
    stack.restart("worker")
    photos_to(telegram, 5005)
    only_one_photo_before_a_later_one(telegram, fal, 5005, "a slow sunrise")
    prompts = [(r.get("body") or {}).get("prompt") for r in fal.requests("submit")]
    assert prompts == ["a slow sunrise", "later"]


def test_a_hundred_results_at_once_all_reach_their_chats(
    telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    fal.configure(latency={"default": 4.0})
    users = range(6000, 6100)
    for user in users:
        telegram.send_message(user, f"portrait number {user}")
    fal.wait_for("submit", count=100)
    sent = telegram.wait_for("sendPhoto", count=100, timeout=60)
    assert sorted(r["params"]["chat_id"] for r in sent) == list(users)
    assert fal.status_checks(fal.requests("submit")) == []


def test_a_429_delays_but_does_not_lose_the_photo(
    telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    telegram.fault(method="sendPhoto", chat_id=5006, status=429, retry_after=3, times=1)
    telegram.send_message(5006, "a paper boat")
    photos_to(telegram, 5006, timeout=30)
    # The stand-in refuses the bot's messages until retry_after has passed, as Telegram does:
    # a try before then would be a second 429.
    attempts = telegram.requests("sendPhoto", 5006)
    assert [a["status"] for a in attempts] == [429, 200]


def test_content_policy_gives_a_clear_text_and_no_photo(
    telegram: TelegramSandbox, fal: FalSandbox, db: AsyncEngine
) -> None:
    telegram.send_message(5007, "something [content_policy]")
    edits = telegram.wait_for("editMessageText", chat_id=5007)
    assert edits[-1]["params"]["text"].startswith("🚫 The model refused this request")
    assert telegram.requests("sendPhoto", 5007) == []


async def test_russian_user_reads_the_error_in_russian(
    telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    telegram.send_message(5008, "что-то [content_policy]", language_code="ru")
    edits = telegram.wait_for("editMessageText", chat_id=5008)
    assert edits[-1]["params"]["text"].startswith("🚫 Модель отказалась")


async def test_a_blocked_user_is_not_retried(
    telegram: TelegramSandbox, fal: FalSandbox, db: AsyncEngine
) -> None:
    """Once the job is failed as undeliverable no task of it sends again: its one attempt
    is the 403."""
    telegram.block(5009)
    telegram.send_message(5009, "a fox")
    for _ in range(300):
        if (job := await job_of_or_none(db, 5009)) is not None and job.error == "undeliverable":
            break
        await asyncio.sleep(0.1)
    assert job is not None and job.error == "undeliverable", job
    attempts = telegram.requests("sendPhoto", 5009)
    assert [a["status"] for a in attempts] == [403]


def test_fal_5xx_on_submit_is_retried(telegram: TelegramSandbox, fal: FalSandbox) -> None:
    fal.fault(on="submit", times=2, status=503)
    telegram.send_message(5010, "an owl at night")
    photos_to(telegram, 5010, timeout=40)
    assert [s["status"] for s in fal.requests("submit")] == [503, 503, 200]


def test_telegram_refusing_the_url_gets_an_upload(
    telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    telegram.fault(
        method="sendPhoto",
        chat_id=5011,
        status=400,
        times=1,
        description="Bad Request: failed to get HTTP URL content",
    )
    telegram.send_message(5011, "a teapot")
    photos_to(telegram, 5011)
    refused, uploaded = telegram.requests("sendPhoto", 5011)
    assert refused["status"] == 400
    assert uploaded["status"] == 200
    assert uploaded["params"]["photo"].startswith("attach://")
    [upload] = uploaded["files"].values()
    assert upload["size"] > 1000


def test_a_lost_webhook_is_found_by_one_status_check(
    telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    fal.configure(webhook_drop=True)
    telegram.send_message(5012, "a lost letter")
    photos_to(telegram, 5012, timeout=30)
    assert len(fal.status_checks(fal.requests("submit"))) == 1


def test_a_flooding_user_gets_one_warning_and_at_most_the_limit_of_jobs(
    telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    """Prompts past the limits make no job, and the user is warned once rather than once
    per prompt (answering every one would be a flood of our own at 1 message a second)."""
    for n in range(15):
        telegram.send_message(5013, f"flood {n}")

    def refusals() -> list[str]:
        return [
            r["params"]["text"]
            for r in telegram.requests("sendMessage", 5013)
            if r["params"]["text"].startswith(("🐢", "⏳ You already have"))
        ]

    assert wait_until(refusals, 1, timeout=60)
    submits = wait_until(lambda: fal.requests("submit"), 5, timeout=60)
    photos_to(telegram, 5013, count=len(submits), timeout=60)
    # The chat's updates are handled in order: once /balance is answered, every prompt of
    # the flood has had its answer (a job, a warning, or nothing).
    telegram.send_message(5013, "/balance")
    wait_until(
        lambda: [
            r
            for r in telegram.requests("sendMessage", 5013)
            if r["params"]["text"].startswith("💰")
        ],
        1,
        timeout=60,
    )
    assert 5 <= len(fal.requests("submit")) <= 10
    assert len(refusals()) == 1, refusals()


def test_a_webhook_without_its_payload_is_fetched_once(
    telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    """fal may say `status: OK` with `payload: null` (a result too big to carry); kadr then
    reads the result from the response URL, once, and delivers it."""
    fal.configure(webhook_drop=True, latency={"default": 0.05})
    telegram.send_message(5015, "a payload left behind")
    [submit] = fal.wait_for("submit")
    request_id = submit["request_id"]
    job = wait_until(lambda: [j for j in [fal.job(request_id)] if j["output"] is not None], 1, 10)[
        0
    ]
    body = json.dumps(
        {
            "request_id": request_id,
            "gateway_request_id": job["gateway_request_id"],
            "status": "OK",
            "payload": None,
        }
    )
    headers = {**fal.sign(body, request_id), "Content-Type": "application/json"}
    assert httpx.post(job["webhook_url"], content=body, headers=headers).status_code == 200
    [photo] = photos_to(telegram, 5015)
    assert photo["params"]["photo"] == job["output"]["images"][0]["url"]
    assert len([r for r in fal.requests("result") if request_id in r["url"]]) == 1
    assert fal.status_checks([submit]) == []
