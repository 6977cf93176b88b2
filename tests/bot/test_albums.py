"""Albums in process (tests/bot/conftest.py): each photo of an album is only recorded; the
settle task (workers/albums.py) adds one update once the photos stop, and that update makes
the one job, or asks once what to do."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import update

from core.domain import credits
from core.domain.models import User
from core.infra.retry import RetryLater
from core.jobs.start import price_of
from core.telegram.albums import settled_update_id
from core.telegram.inbox import PARTITIONS, PREFIX, Entry
from tests.bot.conftest import Chat
from workers import albums as settling

ALBUM = "13800000000000001"


def album_photo(chat: Chat, message_id: int, caption: str | None = None) -> dict[str, Any]:
    photo = [
        {
            "file_id": f"file-{message_id}",
            "file_unique_id": f"u{message_id}",
            "width": 640,
            "height": 480,
            "file_size": 50_000,
        }
    ]
    body = chat.message(photo=photo, media_group_id=ALBUM, message_id=message_id)
    if caption is not None:
        body["message"]["caption"] = caption
    return body


async def settle(chat: Chat) -> None:
    resources = SimpleNamespace(redis=chat.dispatcher["redis"], config=chat.dispatcher["config"])
    await settling.settle_album(SimpleNamespace(resources=resources), chat.chat_id, ALBUM)  # type: ignore[arg-type]


async def settled_updates(chat: Chat) -> list[dict[str, Any]]:
    """The updates the settle task put in the chat's inbox partition."""
    redis = chat.dispatcher["redis"]
    raw = await redis.lrange(f"{PREFIX}:{chat.chat_id % PARTITIONS}", 0, -1)
    updates = [json.loads(Entry(entry).update) for entry in raw]
    return [u for u in updates if u["update_id"] == settled_update_id(chat.chat_id, ALBUM)]


async def send_album(chat: Chat, *captions: str | None) -> None:
    """The album's photos (message ids 101, 102, …) arrive last first, the second one twice."""
    photos = [album_photo(chat, 101 + i, caption) for i, caption in enumerate(captions)]
    for body in [*reversed(photos), photos[1]]:
        await chat.feed(body)


@pytest.fixture
def no_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    """The album counts as complete at once (the quiet window is tested on its own)."""
    monkeypatch.setattr(settling, "QUIET", 0.0)


async def test_an_album_waits_for_its_photos_to_stop(chat: Chat) -> None:
    await send_album(chat, "make them a band", None, None)
    with pytest.raises(RetryLater):
        await settle(chat)
    assert await settled_updates(chat) == []


async def test_an_albums_photos_make_one_job_of_them_all(chat: Chat, no_quiet: None) -> None:
    await send_album(chat, "make them a band", None, None)
    assert [name for name in chat.session.names() if name != "getMe"] == []
    assert await chat.job_count() == 0
    await settle(chat)
    await settle(chat)  # the task run again (arq runs at least once)
    [settled] = await settled_updates(chat)
    await chat.feed(settled)
    await chat.feed(settled)  # the update handled again: the same job
    [job] = await chat.jobs()
    assert job.prompt == "make them a band"
    assert job.model == "fal-ai/nano-banana/edit"
    assert job.options["image_file_ids"] == ["file-101", "file-102", "file-103"]
    assert len(chat.calls("sendMessage")) == 1  # the status message, once


LATE = {
    "en": "⏱ This photo came after the rest of its album had been taken, so I left it out. "
    "To use it, send it again with a caption saying what to do.",
    "ru": "⏱ Это фото пришло, когда остальные фото альбома уже были приняты, и в задачу не "
    "вошло. Чтобы использовать его, пришлите его ещё раз с подписью — что с ним сделать.",
}


@pytest.mark.parametrize("language", list(LATE))
async def test_a_photo_after_its_album_was_taken_is_told_so_once_and_the_job_stays(
    chat: Chat, no_quiet: None, language: str
) -> None:
    photos = [album_photo(chat, 101 + i, "make them a band" if i == 0 else None) for i in (0, 1)]
    late = [album_photo(chat, 103), album_photo(chat, 104)]
    for body in [*photos, *late]:
        body["message"]["from"]["language_code"] = language
    for body in photos:
        await chat.feed(body)
    await settle(chat)
    [settled] = await settled_updates(chat)
    await chat.feed(settled)
    [_status] = chat.calls("sendMessage")

    for body in late:
        await chat.feed(body)
    await settle(chat)  # the task the first photos enqueued, run again: nothing new

    _status, *told = chat.calls("sendMessage")
    assert [(call.text, call.reply_parameters.message_id) for call in told] == [
        (LATE[language], 103),
        (LATE[language], 104),
    ]
    assert len(await settled_updates(chat)) == 1
    [job] = await chat.jobs()
    assert job.options["image_file_ids"] == ["file-101", "file-102"]
    allowance = chat.dispatcher["allowance"]
    async with chat.sessions() as session:
        assert (await credits.balance_of(session, chat.user_id)).total == 10 - price_of(
            allowance, job
        )


async def test_a_model_that_takes_one_photo_uses_the_first_and_says_so(
    chat: Chat, no_quiet: None
) -> None:
    await chat.say("/start")
    chosen = {"models": {"edit": "fal-ai/flux-pro/kontext"}}  # as /settings stores it
    async with chat.sessions() as session:
        await session.execute(
            update(User).where(User.id == chat.user_id).values(preferences=chosen)
        )
        await session.commit()
    chat.session.requests.clear()
    await send_album(chat, None, "paint them blue", None)
    await settle(chat)
    [settled] = await settled_updates(chat)
    await chat.feed(settled)
    [job] = await chat.jobs()
    assert job.model == "fal-ai/flux-pro/kontext"
    assert job.options["image_file_id"] == "file-101"
    assert "image_file_ids" not in job.options
    assert "FLUX.1 Kontext [pro] takes one photo, so I used the first of the 3." in chat.texts()


async def test_an_album_without_a_caption_is_asked_about_once(chat: Chat, no_quiet: None) -> None:
    await send_album(chat, None, None, None)
    await settle(chat)
    [settled] = await settled_updates(chat)
    await chat.feed(settled)
    [question] = chat.calls("sendMessage")
    assert question.text == "What shall I do with these 3 photos?"
    assert question.reply_markup is not None
    assert await chat.job_count() == 0
