"""One message per job at a peak (bot/launch.py): a prompt gets a status message with where
it stands while sends are not booked ahead; once they are, only a reaction on the user's
message, which is not a message and costs none of the bot's 30 sends a second (given by the
webhook in a private chat, by the handler in a group)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from bot.job_messages import EDITED_PREFIX, REFRESH_PRIVATE, claim_refresh
from bot.launch import Launcher
from core.domain.models import Job
from core.jobs.estimate import STATUS_MAX_WAIT
from core.telegram.limits import BOT_KEY, LINE_KEY
from tests.bot.conftest import Chat, World


def replace_chat(job: Job, chat_id: int) -> Job:
    """The same job as if it had been started in another chat (a group)."""
    return Job(id=f"{job.id}-g", chat_id=chat_id, user_id=job.user_id)


@pytest.fixture
async def launcher(world: World) -> AsyncIterator[Launcher]:
    launcher: Launcher = world.dispatcher["launcher"]
    await launcher.redis.delete(LINE_KEY, BOT_KEY)
    yield launcher
    await launcher.redis.delete(LINE_KEY, BOT_KEY)


async def test_a_quiet_bot_posts_the_status_message(chat: Chat, launcher: Launcher) -> None:
    await chat.say("a fox in the snow")
    [status] = chat.calls("sendMessage")
    assert status.text.startswith("⏳ In the queue…")
    assert chat.calls("setMessageReaction") == []
    [job] = await chat.jobs()
    assert job.status_message_id is not None


async def test_with_results_waiting_a_group_prompt_gets_a_reaction_instead(
    chat: Chat, launcher: Launcher
) -> None:
    for _ in range(300):  # ten seconds of results in line
        await launcher.limiter.place_in_line()
    group = chat.in_group(-100_778)
    body = group.message(text="@kadr_bot a fox in the snow")
    await group.feed(body)
    assert group.calls("sendMessage") == []
    [reaction] = group.calls("setMessageReaction")
    assert reaction.message_id == body["message"]["message_id"]
    assert [r.emoji for r in reaction.reaction] == ["👀"]
    [job] = await group.jobs()
    assert job.status_message_id is None


async def test_with_results_waiting_a_private_prompt_gets_nothing_more_than_its_webhook_reaction(
    chat: Chat, launcher: Launcher
) -> None:
    """In a private chat the webhook's answer carried the 👀 (core/telegram/seen.py)."""
    for _ in range(300):
        await launcher.limiter.place_in_line()
    await chat.say("a fox in the snow")
    assert chat.calls("sendMessage") == chat.calls("setMessageReaction") == []
    [job] = await chat.jobs()
    assert job.status_message_id is None


async def test_a_prompt_that_waited_for_a_handler_gets_no_status_message(
    chat: Chat, launcher: Launcher
) -> None:
    """Prompts waiting in the inbox are a peak before their results fill the line: each will
    want a send. The user has the webhook's 👀 already."""
    body = chat.message(text="a fox in the snow")
    await chat.feed(body, received_at=time.time() - 3 * STATUS_MAX_WAIT)
    assert chat.calls("sendMessage") == chat.calls("setMessageReaction") == []
    [job] = await chat.jobs()
    assert job.status_message_id is None

    await chat.feed(chat.message(text="an owl"), received_at=time.time())
    assert len(chat.calls("sendMessage")) == 1


async def test_a_status_edit_is_claimed_once_per_interval_and_only_for_a_new_text(
    chat: Chat, launcher: Launcher
) -> None:
    """The refresh rule (bot/job_messages.claim_refresh): whoever edits a job's status message,
    one edit per 5 s in a private chat and per 15 s in a group, and none that changes
    nothing."""
    await chat.say("a fox in the snow")
    [job] = await chat.jobs()
    redis = launcher.redis
    await redis.delete(EDITED_PREFIX + job.id)
    assert await claim_refresh(redis, job, "⏳ 3 ahead")
    assert not await claim_refresh(redis, job, "⏳ 2 ahead"), "within the interval"
    await redis.delete(EDITED_PREFIX + job.id)
    assert not await claim_refresh(redis, job, "⏳ 3 ahead"), "the same text again"
    assert await claim_refresh(redis, job, "⏳ 2 ahead")
    assert 0 < await redis.pttl(EDITED_PREFIX + job.id) <= REFRESH_PRIVATE * 1000

    group_job = replace_chat(job, -100500)
    assert await claim_refresh(redis, group_job, "⏳ 1 ahead")
    assert await redis.pttl(EDITED_PREFIX + group_job.id) > REFRESH_PRIVATE * 1000
