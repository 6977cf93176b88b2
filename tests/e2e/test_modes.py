"""Every mode, every button and every bad input, end to end through the real processes.

What is asserted is what the user sees in the chat and what reached fal; the bot token must
never be part of anything fal receives.
"""

from __future__ import annotations

import io
import json
import os

import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.domain.models import Job
from sandbox.control import FalSandbox, TelegramSandbox
from sandbox.stack import TEST_TOKEN, Stack


def png(width: int = 640, height: int = 480, *, noise: bool = False) -> bytes:
    if noise:
        image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    else:
        image = Image.new("RGB", (width, height), (40, 120, 200))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=0 if noise else 6)
    return out.getvalue()


def buttons(record: dict) -> dict[str, str]:
    """Button text → callback data of a recorded bot message."""
    rows = (record["params"].get("reply_markup") or {}).get("inline_keyboard", [])
    return {button["text"]: button["callback_data"] for row in rows for button in row}


def message_id(record: dict) -> int:
    return record["response"]["result"]["message_id"]


def submits(fal: FalSandbox) -> list[dict]:
    return [r for r in fal.wait_for("submit") if r["status"] == 200]


async def job_count(db: AsyncEngine, user_id: int) -> int:
    async with db.connect() as connection:
        return await connection.scalar(
            select(func.count()).select_from(Job).where(Job.user_id == user_id)
        )  # type: ignore[return-value]


def assert_token_never_reached_fal(fal: FalSandbox) -> None:
    secret = TEST_TOKEN.split(":")[1]
    assert secret not in json.dumps(fal.requests())


def test_photo_with_caption_is_edited(telegram: TelegramSandbox, fal: FalSandbox) -> None:
    telegram.send_photo(7001, png(), caption="make it winter")
    [photo] = telegram.wait_for("sendPhoto", chat_id=7001)
    [submit] = submits(fal)
    assert submit["model_id"] == "fal-ai/flux-pro/kontext"
    assert submit["body"]["prompt"] == "make it winter"
    # An earlier test's job may upload its photo after the reset: ours is among the uploads.
    assert 200 in {upload["status"] for upload in fal.requests("upload")}
    assert submit["body"]["image_url"].startswith(fal.base_url + "/cdn/files/")
    assert photo["params"]["caption"].startswith("make it winter")
    assert set(buttons(photo)) == {
        "🔁 Regenerate",
        "✏️ Edit this",
        "🎬 Animate",
        "⬇️ Original",
        "🎨 Style",
    }
    assert_token_never_reached_fal(fal)


def test_photo_without_caption_offers_three_choices_and_edits(
    telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    telegram.send_photo(7002, png())
    [question] = telegram.wait_for("sendMessage", chat_id=7002)
    assert question["params"]["text"] == "What shall I do with this photo?"
    choices = buttons(question)
    assert set(choices) == {"✏️ Edit this", "✨ Retouch", "🎬 Animate"}
    telegram.press_button(7002, message_id(question), choices["✏️ Edit this"])
    asked = telegram.wait_for("sendMessage", chat_id=7002, count=2)[-1]
    assert asked["params"]["text"].startswith("✏️ What should I change?")
    telegram.send_message(7002, "add a rainbow")
    telegram.wait_for("sendPhoto", chat_id=7002)
    [submit] = submits(fal)
    assert (submit["model_id"], submit["body"]["prompt"]) == (
        "fal-ai/flux-pro/kontext",
        "add a rainbow",
    )


def test_retouch(telegram: TelegramSandbox, fal: FalSandbox) -> None:
    telegram.send_photo(7003, png(), as_document=True)
    [question] = telegram.wait_for("sendMessage", chat_id=7003)
    telegram.press_button(7003, message_id(question), buttons(question)["✨ Retouch"])
    [photo] = telegram.wait_for("sendPhoto", chat_id=7003)
    [submit] = submits(fal)
    assert submit["model_id"] == "fal-ai/retoucher"
    assert "prompt" not in submit["body"]
    assert photo["params"]["photo"] == fal.job(submit["request_id"])["output"]["image"]["url"]
    assert_token_never_reached_fal(fal)


def test_animate_a_photo(telegram: TelegramSandbox, fal: FalSandbox) -> None:
    telegram.send_photo(7004, png())
    [question] = telegram.wait_for("sendMessage", chat_id=7004)
    telegram.press_button(7004, message_id(question), buttons(question)["🎬 Animate"])
    [video] = telegram.wait_for("sendVideo", chat_id=7004, timeout=40)
    [submit] = submits(fal)
    assert submit["model_id"] == "fal-ai/kling-video/v2.1/standard/image-to-video"
    assert set(buttons(video)) == {"🔁 Regenerate", "⬇️ Original"}


def test_text_to_video(telegram: TelegramSandbox, fal: FalSandbox) -> None:
    telegram.send_message(7005, "/video waves on a beach")
    [video] = telegram.wait_for("sendVideo", chat_id=7005, timeout=40)
    [submit] = submits(fal)
    assert submit["model_id"] == "fal-ai/kling-video/v2.5-turbo/pro/text-to-video"
    assert video["params"]["video"] == fal.job(submit["request_id"])["output"]["video"]["url"]
    telegram.send_message(7005, "/video")
    texts = [r["params"]["text"] for r in telegram.wait_for("sendMessage", chat_id=7005, count=2)]
    assert texts[-1].startswith("✍️ Describe the video")


def test_buttons_under_a_result(stack: Stack, telegram: TelegramSandbox, fal: FalSandbox) -> None:
    telegram.send_message(7006, "a red kite")
    [photo] = telegram.wait_for("sendPhoto", chat_id=7006)
    actions = buttons(photo)
    first = submits(fal)[0]

    stack.restart("api")  # buttons live in the database, not in a process
    telegram.press_button(7006, message_id(photo), actions["🔁 Regenerate"])
    telegram.wait_for("sendPhoto", chat_id=7006, count=2)
    again = fal.wait_for("submit", count=2)[1]
    assert again["body"]["prompt"] == "a red kite"
    assert again["body"]["seed"] != first["body"].get("seed")

    telegram.press_button(7006, message_id(photo), actions["⬇️ Original"])
    [document] = telegram.wait_for("sendDocument", chat_id=7006)
    assert (
        document["params"]["document"] == fal.job(first["request_id"])["output"]["images"][0]["url"]
    )

    telegram.press_button(7006, message_id(photo), actions["✏️ Edit this"])
    telegram.wait_for("sendMessage", chat_id=7006, count=3)
    telegram.send_message(7006, "paint it blue")
    edit = fal.wait_for("submit", count=3)[2]
    assert edit["model_id"] == "fal-ai/flux-pro/kontext"
    assert edit["body"]["image_url"] == document["params"]["document"]

    telegram.press_button(7006, message_id(photo), actions["🎬 Animate"])
    telegram.wait_for("sendVideo", chat_id=7006, timeout=40)


def test_cancel_while_generating_says_the_result_still_comes(
    telegram: TelegramSandbox,
    fal: FalSandbox,
) -> None:
    """fal had started it, so a cancel is only a signal: the status says so, and the picture
    the model finishes anyway reaches the chat."""
    fal.configure(latency={"default": 5.0})
    telegram.send_message(7007, "a slow cathedral")
    [status] = telegram.wait_for("sendMessage", chat_id=7007)
    fal.wait_for("submit")
    telegram.press_button(7007, message_id(status), buttons(status)["✖ Cancel"])
    assert any(
        e["params"]["text"].startswith("✖ Stopping it")
        for e in telegram.wait_for("editMessageText", chat_id=7007)
    )
    assert fal.wait_for("cancel")[0]["status"] == 202
    [photo] = telegram.wait_for("sendPhoto", chat_id=7007, timeout=30)
    assert photo["params"]["caption"].startswith("a slow cathedral")


@pytest.mark.parametrize(
    ("send", "expected"),
    [
        (
            lambda tg: tg.send_photo(7010, png(2700, 2700, noise=True), as_document=True),
            "📦 That file is too big: the limit is 20 MB",
        ),
        (
            lambda tg: tg.send_photo(
                7010,
                b"just some text\n" * 50,
                as_document=True,
                filename="notes.txt",
                content_type="text/plain",
            ),
            "🖼 That is not an image I can use",
        ),
        (
            lambda tg: tg.send_photo(7010, png(5000, 300)),
            "📐 That picture is too large: each side must be at most 4096 pixels",
        ),
    ],
    ids=["oversized", "not-an-image", "too-wide"],
)
async def test_bad_photos_are_refused_before_any_job(
    telegram: TelegramSandbox, fal: FalSandbox, db: AsyncEngine, send, expected: str
) -> None:
    before = await job_count(db, 7010)
    send(telegram)
    [answer] = telegram.wait_for("sendMessage", chat_id=7010)
    assert answer["params"]["text"].startswith(expected)
    assert await job_count(db, 7010) == before
    assert fal.requests("submit") == [] and fal.requests("upload") == []


def test_dimensions_found_only_in_the_bytes_fail_the_job_clearly(
    telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    telegram.send_photo(7011, png(5000, 300), caption="brighter", as_document=True)
    edits = telegram.wait_for("editMessageText", chat_id=7011, count=1, timeout=30)
    assert edits[-1]["params"]["text"].startswith("📐 That picture is too large")
    assert fal.requests("submit") == []


def test_empty_caption_and_long_prompt(telegram: TelegramSandbox, fal: FalSandbox) -> None:
    telegram.send_photo(7012, png(), caption="   ")
    telegram.send_message(7012, "y" * 1200)
    texts = [r["params"]["text"] for r in telegram.wait_for("sendMessage", chat_id=7012, count=2)]
    assert texts[0].startswith("✏️ What should I change?")
    assert texts[1].startswith("✂️ That description is too long: 1200 characters")
    assert fal.requests("submit") == []


def test_preferences_change_what_is_sent_to_fal(telegram: TelegramSandbox, fal: FalSandbox) -> None:
    telegram.send_message(7013, "/settings")
    [menu] = telegram.wait_for("sendMessage", chat_id=7013)
    assert "Aspect ratio: 1:1 · Images: 1" in menu["params"]["text"]
    telegram.press_button(7013, message_id(menu), buttons(menu)["16:9"])
    telegram.press_button(7013, message_id(menu), buttons(menu)["🖼 2"])
    telegram.press_button(7013, message_id(menu), buttons(menu)["🎨 Picture"])
    models = telegram.wait_for("editMessageText", chat_id=7013, count=3)[-1]
    dev = next(data for text, data in buttons(models).items() if "FLUX.1 [dev]" in text)
    telegram.press_button(7013, message_id(menu), dev)
    summary = telegram.wait_for("editMessageText", chat_id=7013, count=4)[-1]["params"]["text"]
    assert "Picture: FLUX.1 [dev]" in summary and "Aspect ratio: 16:9 · Images: 2" in summary

    telegram.send_message(7013, "two foxes")
    [album] = telegram.wait_for("sendMediaGroup", chat_id=7013)
    [submit] = submits(fal)
    assert submit["model_id"] == "fal-ai/flux/dev"
    assert (submit["body"]["image_size"], submit["body"]["num_images"]) == ("landscape_16_9", 2)
    assert len(album["params"]["media"]) == 2
    sent = telegram.wait_for("sendMessage", chat_id=7013, count=3)
    assert "🔁 Regenerate" in buttons(sent[-1]), [m["params"]["text"] for m in sent]


def test_history_lists_jobs_with_regenerate(telegram: TelegramSandbox, fal: FalSandbox) -> None:
    telegram.send_message(7014, "/history")
    [empty] = telegram.wait_for("sendMessage", chat_id=7014)
    assert empty["params"]["text"].startswith("You have no jobs yet")
    telegram.send_message(7014, "an old map")
    telegram.wait_for("sendPhoto", chat_id=7014)
    telegram.send_message(7014, "/history")
    listing = telegram.wait_for("sendMessage", chat_id=7014, count=3)[-1]
    assert "an old map" in listing["params"]["text"]
    assert "🔁 1" in buttons(listing)
    telegram.press_button(7014, message_id(listing), buttons(listing)["🔁 1"])
    telegram.wait_for("sendPhoto", chat_id=7014, count=2)


async def test_retouch_has_its_own_lower_cap(
    telegram: TelegramSandbox, fal: FalSandbox, db: AsyncEngine
) -> None:
    telegram.send_photo(7015, png(2200, 1800, noise=True), as_document=True)
    [question] = telegram.wait_for("sendMessage", chat_id=7015)
    telegram.press_button(7015, message_id(question), buttons(question)["✨ Retouch"])
    answer = telegram.wait_for("sendMessage", chat_id=7015, count=2)[-1]
    assert answer["params"]["text"].startswith("📦 That file is too big: the limit is 10 MB")
    assert await job_count(db, 7015) == 0
    assert fal.requests("upload") == []
