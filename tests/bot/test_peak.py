"""One message per job at a peak (bot/launch.py): a prompt gets a status message with where
it stands while sends are not booked ahead; once they are, a reaction on the user's message
instead, which is not a message and costs none of the bot's 30 sends a second."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.launch import Launcher
from core.telegram.limits import BOT_KEY, LINE_KEY
from tests.bot.conftest import Chat, World


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


async def test_with_results_waiting_a_prompt_gets_a_reaction_instead(
    chat: Chat, launcher: Launcher
) -> None:
    for _ in range(300):  # ten seconds of results in line
        await launcher.limiter.place_in_line()
    body = chat.message(text="a fox in the snow")
    await chat.feed(body)
    assert chat.calls("sendMessage") == []
    [reaction] = chat.calls("setMessageReaction")
    assert reaction.message_id == body["message"]["message_id"]
    assert [r.emoji for r in reaction.reaction] == ["👀"]
    [job] = await chat.jobs()
    assert job.status_message_id is None
