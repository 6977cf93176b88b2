"""A flood from one user (tests/bot/conftest.py): at most the configured number of jobs,
and one warning about it instead of a refusal per message."""

from __future__ import annotations

from tests.bot.conftest import Chat


async def test_a_flood_makes_at_most_the_limit_of_jobs_and_one_warning(chat: Chat) -> None:
    for n in range(30):
        await chat.say(f"flood {n}")
    assert await chat.job_count() == 5  # USER_LIVE_JOBS: none of them has finished
    statuses = [text for text in chat.texts() if text.startswith("⏳ In the queue")]
    warnings = [text for text in chat.texts() if not text.startswith("⏳ In the queue")]
    assert len(statuses) == 5
    assert warnings == ["⏳ You already have 5 jobs in progress. Wait for one to finish, please."]
