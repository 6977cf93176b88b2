"""Manners in a group (tests/bot/conftest.py): every message there would otherwise be a paid
job, so the bot takes a prompt or a photo only when it is addressed — a reply to one of its
messages or a mention of it — and always answers its commands."""

from __future__ import annotations

from tests.bot.conftest import Chat

GROUP = -100_777


async def test_a_group_message_not_for_the_bot_makes_nothing(chat: Chat) -> None:
    group = chat.in_group(GROUP)
    await group.say("what a nice day, everyone")
    photo = [{"file_id": "p1", "file_unique_id": "u1", "width": 640, "height": 480}]
    await group.feed(group.message(photo=photo, caption="look at this"))
    assert [name for name in group.session.names() if name != "getMe"] == []
    assert await group.job_count() == 0


async def test_a_mention_of_the_bot_is_a_prompt_without_the_mention(chat: Chat) -> None:
    group = chat.in_group(GROUP)
    await group.say("@kadr_bot a fox in the snow")
    [job] = await group.jobs()
    assert (job.prompt, job.chat_id) == ("a fox in the snow", GROUP)


async def test_a_reply_to_the_bot_is_a_prompt(chat: Chat) -> None:
    group = chat.in_group(GROUP)
    bots_message = {
        "message_id": 5,
        "date": 1_700_000_000,
        "chat": {"id": GROUP, "type": "supergroup", "title": "G"},
        "from": {"id": 42, "is_bot": True, "first_name": "kadr", "username": "kadr_bot"},
        "text": "⏳ In the queue…",
    }
    someone_elses = {**bots_message, "from": {"id": 1, "is_bot": False, "first_name": "Bo"}}
    await group.say("an owl at night", reply_to_message=someone_elses)
    assert await group.job_count() == 0
    await group.say("an owl at night", reply_to_message=bots_message)
    [job] = await group.jobs()
    assert job.prompt == "an owl at night"


async def test_commands_are_answered_in_a_group(chat: Chat) -> None:
    group = chat.in_group(GROUP)
    await group.say("/balance")
    [statement] = group.texts()
    assert statement.startswith("💰 10 credits")
