"""Reply to change it (tests/bot/conftest.py): a text reply to a picture edits that picture, a
reply to a result continues its chain, ↩️ Undo shows the version before once, and /history
shows a chain as one entry."""

from __future__ import annotations

from typing import Any

from bot.i18n import _
from bot.job_messages import Action, JobButton, caption
from core.domain.catalog import catalog
from core.domain.models import Job, new_job_id
from core.domain.users import touch_user
from core.jobs import lifecycle
from core.jobs.queries import new_job
from tests.bot.conftest import Chat

GROUP = -100_778
BOT = {"id": 42, "is_bot": True, "first_name": "kadr", "username": "kadr_bot"}


def photo(file_id: str) -> list[dict[str, Any]]:
    return [{"file_id": file_id, "file_unique_id": f"u-{file_id}", "width": 640, "height": 480}]


def message_of(chat: Chat, message_id: int, sender: dict[str, Any], **content: Any) -> dict:
    """A message of the chat as Telegram puts it in `reply_to_message`."""
    where = (
        {"id": chat.chat_id, "type": "private", "first_name": "Ann"}
        if chat.chat_id > 0
        else {"id": chat.chat_id, "type": "supergroup", "title": "G"}
    )
    return {
        "message_id": message_id,
        "date": 1_700_000_000,
        "chat": where,
        "from": sender,
        **content,
    }


def person(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": "Ann"}


async def a_result(
    chat: Chat,
    message_id: int,
    *,
    file_id: str,
    parent: Job | None = None,
    prompt: str = "a cat",
    kind: str | None = None,
) -> Job:
    """A job delivered to the chat in message `message_id` (its file id `file_id`, sent as
    `kind`; None: delivered before kinds were kept)."""
    async with chat.sessions.begin() as session:
        await touch_user(
            session, user_id=chat.user_id, username=None, first_name="Ann", language_code="en"
        )
    model = catalog().find("fal-ai/flux-pro/kontext" if parent else "fal-ai/flux/schnell")
    assert model is not None
    job = new_job(
        job_id=new_job_id(),
        update_id=None,
        user_id=chat.user_id,
        chat_id=chat.chat_id,
        language="en",
        model=model,
        prompt=prompt,
        options={},
        parent=parent,
    )
    assert await lifecycle.accept(chat.sessions, job)
    result = {"images": [{"url": f"https://v3.fal.media/files/{job.id}.png"}]}
    assert await lifecycle.mark_completed(chat.sessions, job.id, result)
    kinds = {"telegram_file_kinds": [kind]} if kind else {}
    delivered = {**result, "telegram_file_ids": [file_id], **kinds}
    assert await lifecycle.mark_delivered(chat.sessions, job, delivered, message_ids=[message_id])
    job.result = delivered
    return job


async def test_a_reply_to_your_own_photo_edits_it(chat: Chat) -> None:
    mine = message_of(chat, 300, person(chat.user_id), photo=photo("my-photo"))
    await chat.say("make it winter", reply_to_message=mine)
    [job] = await chat.jobs()
    assert (job.mode, job.prompt, job.parent_id, job.step) == ("edit", "make it winter", None, 1)
    assert job.options["image_file_id"] == "my-photo"


async def test_a_reply_to_a_result_edits_it_as_the_next_step(chat: Chat) -> None:
    first = await a_result(chat, 500, file_id="tg-v1")
    shown = message_of(chat, 500, BOT, photo=photo("tg-v1"), caption="a cat")
    await chat.say("paint it blue", reply_to_message=shown)
    [second] = [job for job in await chat.jobs() if job.id != first.id]
    assert (second.mode, second.prompt) == ("edit", "paint it blue")
    assert second.options["image_url"] == first.result["images"][0]["url"]  # type: ignore[index]
    assert (second.parent_id, second.step) == (first.id, 2)
    assert "v2" in caption(second)


async def test_undo_shows_the_version_before_once_and_makes_no_job(chat: Chat) -> None:
    first = await a_result(chat, 500, file_id="tg-v1")
    second = await a_result(chat, 501, file_id="tg-v2", parent=first, prompt="paint it blue")
    undo = JobButton(action=Action.UNDO, job_id=second.id).pack()

    await chat.feed(chat.tap(undo))
    await chat.feed(chat.tap(undo))

    [shown] = chat.calls("sendPhoto")
    assert (shown.photo, shown.chat_id) == ("tg-v1", chat.chat_id)
    assert shown.caption == caption(first)
    assert chat.calls("answerCallbackQuery")[-1].text == _("undo_done")
    assert await chat.job_count() == 2

    # The version shown again is a result like any: a reply to it continues from it.
    again = message_of(chat, 1000, BOT, photo=photo("tg-v1"))
    await chat.say("make it green", reply_to_message=again)
    [third] = [job for job in await chat.jobs() if job.id not in (first.id, second.id)]
    assert (third.parent_id, third.step) == (first.id, 2)


async def test_undo_sends_a_version_kept_as_a_document_as_a_document_at_once(chat: Chat) -> None:
    first = await a_result(chat, 500, file_id="tg-big", kind="document")
    second = await a_result(chat, 501, file_id="tg-v2", parent=first, prompt="paint it blue")

    await chat.feed(chat.tap(JobButton(action=Action.UNDO, job_id=second.id).pack()))

    assert [name for name in chat.session.names() if name.startswith("send")] == ["sendDocument"]
    [shown] = chat.calls("sendDocument")
    assert (shown.document, shown.chat_id, shown.caption) == (
        "tg-big",
        chat.chat_id,
        caption(first),
    )


async def test_undo_of_a_version_kept_without_its_kind_sends_it_as_telegram_takes_it(
    chat: Chat,
) -> None:
    """Delivered before kinds were kept: tried as a photo, which Telegram refuses for a file
    that went as a document, and sent as the document it is."""
    first = await a_result(chat, 500, file_id="tg-big")
    second = await a_result(chat, 501, file_id="tg-v2", parent=first, prompt="paint it blue")
    refused = "Bad Request: can't use file of type Document as Photo"
    chat.session.script.extend(
        [
            (200, {"ok": True, "result": True}),  # the button's answer
            (400, {"ok": False, "error_code": 400, "description": refused}),
        ]
    )

    await chat.feed(chat.tap(JobButton(action=Action.UNDO, job_id=second.id).pack()))

    sends = [name for name in chat.session.names() if name.startswith("send")]
    assert sends == ["sendPhoto", "sendDocument"]
    [shown] = chat.calls("sendDocument")
    assert (shown.document, shown.caption) == ("tg-big", caption(first))
    assert _("undo_gone") not in chat.texts()


async def test_a_reply_to_something_that_is_not_a_picture_is_told_so(chat: Chat) -> None:
    video = {"file_id": "v", "file_unique_id": "uv", "width": 1, "height": 1, "duration": 2}
    clip = message_of(chat, 300, person(chat.user_id), video=video)
    await chat.say("make it winter", reply_to_message=clip)
    assert chat.texts() == [_("reply_not_a_picture")]
    assert await chat.job_count() == 0


async def test_in_a_group_another_members_photo_is_edited_only_with_a_mention(chat: Chat) -> None:
    group = chat.in_group(GROUP)
    theirs = message_of(group, 300, person(1), photo=photo("their-photo"))
    await group.say("make it winter", reply_to_message=theirs)
    assert [name for name in group.session.names() if name != "getMe"] == []
    assert await group.job_count() == 0

    await group.say("@kadr_bot make it winter", reply_to_message=theirs)
    [job] = await group.jobs()
    assert (job.prompt, job.chat_id) == ("make it winter", GROUP)
    assert job.options["image_file_id"] == "their-photo"


async def test_history_shows_a_chain_as_its_latest_step(chat: Chat) -> None:
    first = await a_result(chat, 500, file_id="tg-v1", prompt="a lighthouse")
    second = await a_result(chat, 501, file_id="tg-v2", parent=first, prompt="add fog")
    await a_result(chat, 502, file_id="tg-v3", parent=second, prompt="make it night")
    await a_result(chat, 503, file_id="tg-other", prompt="a fox")

    await chat.say("/history")

    [answer] = chat.texts()
    entries = answer.split("\n\n")[1:]
    assert len(entries) == 2
    assert "make it night" in entries[1] and "v3" in entries[1]
    assert "a lighthouse" not in answer and "add fog" not in answer
