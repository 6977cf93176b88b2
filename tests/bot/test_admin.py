"""Admin commands (tests/bot/conftest.py): /refund gives the Stars back through
refundStarPayment and takes the credits back once, never below zero; /grant gives credits
once per command; /ban makes the bot ignore a user at the cost of one cached lookup, and
/unban undoes it; /stats counts the day; /broadcast records and queues a broadcast and
shows how it goes; for anyone else the commands do not exist."""

from __future__ import annotations

import re
from datetime import datetime

from core.domain import credits
from core.domain.bans import BANNED_KEY
from core.domain.credits import Balance
from core.domain.models import User
from core.jobs.queue import BROADCAST_QUEUE, queue_name
from tests.bot.conftest import Chat, World


async def _balance(world: World, user_id: int) -> Balance:
    async with world.sessions() as session:
        return await credits.balance_of(session, user_id)


async def test_an_admin_refund_gives_the_stars_back_and_takes_the_credits_once(
    world: World, admin: Chat
) -> None:
    buyer = Chat(world.dispatcher, world.sessions, admin.user_id + 500)
    await buyer.say("/start")
    await buyer.pay(f"stx-refund-{buyer.user_id}")
    assert await _balance(world, buyer.user_id) == Balance(paid=50)

    await admin.say(f"/refund stx-refund-{buyer.user_id}")
    [call] = admin.calls("refundStarPayment")
    assert (call.user_id, call.telegram_payment_charge_id) == (
        buyer.user_id,
        f"stx-refund-{buyer.user_id}",
    )
    assert admin.texts()[-1] == f"↩️ Refunded to user {buyer.user_id}; 50 credits taken back."
    assert await _balance(world, buyer.user_id) == Balance()

    admin.session.script.append(
        (
            400,
            {"ok": False, "error_code": 400, "description": "Bad Request: CHARGE_ALREADY_REFUNDED"},
        )
    )
    await admin.say(f"/refund stx-refund-{buyer.user_id}")
    assert admin.texts()[-1].startswith("Telegram did not refund it:")
    await admin.say("/refund stx-never-paid")
    assert admin.texts()[-1].startswith("No payment with charge id")
    assert await _balance(world, buyer.user_id) == Balance()


async def test_a_refund_of_spent_credits_takes_back_only_what_is_left(
    world: World, admin: Chat
) -> None:
    buyer = Chat(world.dispatcher, world.sessions, admin.user_id + 501)
    await buyer.say("/start")
    await buyer.pay(f"stx-spent-{buyer.user_id}")
    async with world.sessions.begin() as session:
        await credits.reserve(
            session, job_id="j-spent", user_id=buyer.user_id, price=45, free_per_day=0
        )
    await admin.say(f"/refund stx-spent-{buyer.user_id}")
    assert admin.texts()[-1].endswith("5 credits taken back.")
    assert await _balance(world, buyer.user_id) == Balance()


async def test_a_grant_is_made_once_per_command(world: World, admin: Chat) -> None:
    user = Chat(world.dispatcher, world.sessions, admin.user_id + 502)
    await user.say("/start")
    command = admin.message(text=f"/grant {user.user_id} 20")
    await admin.feed(command)
    await admin.feed(command)  # the same update handled again
    assert await _balance(world, user.user_id) == Balance(paid=20)
    assert admin.texts()[-1] == f"🎁 20 credits given to user {user.user_id}."
    await admin.say("/grant 999999999 5")
    assert admin.texts()[-1] == "User 999999999 has never written to the bot."
    await admin.say("/grant bob 5")
    assert admin.texts()[-1].startswith("Usage:")


async def test_admin_commands_do_not_exist_for_anyone_else(broke: Chat) -> None:
    await broke.pay(f"stx-own-{broke.user_id}")
    before = len(broke.session.requests)
    await broke.say(f"/refund stx-own-{broke.user_id}")
    await broke.say(f"/grant {broke.user_id} 1000")
    await broke.say("/stats")
    await broke.say(f"/ban {broke.user_id}")
    await broke.say("/broadcast spam")
    assert broke.session.requests[before:] == []
    assert (await _balance_of(broke)) == Balance(paid=50)


async def _balance_of(chat: Chat) -> Balance:
    async with chat.sessions() as session:
        return await credits.balance_of(session, chat.user_id)


async def test_a_banned_user_costs_one_lookup_and_gets_nothing_until_unbanned(
    world: World, admin: Chat
) -> None:
    user = Chat(world.dispatcher, world.sessions, admin.user_id + 503)
    await user.say("/start")
    seen = await _last_seen(world, user.user_id)
    await admin.say(f"/ban {user.user_id}")
    assert admin.texts()[-1] == f"🚫 User {user.user_id} is banned: the bot ignores them."

    before = len(user.session.requests)
    await user.say("a fox")
    await user.say("/balance")
    assert user.session.requests[before:] == []
    assert await user.job_count() == 0
    assert await _last_seen(world, user.user_id) == seen  # not even the user's row was touched

    await admin.say(f"/unban {user.user_id}")
    await user.say("/balance")
    assert user.texts()[-1].startswith("💰")
    await admin.say("/ban 999999998")
    assert admin.texts()[-1] == "User 999999998 has never written to the bot."


async def test_a_ban_the_cache_lost_is_still_kept(world: World, admin: Chat) -> None:
    user = Chat(world.dispatcher, world.sessions, admin.user_id + 504)
    await user.say("/start")
    await admin.say(f"/ban {user.user_id}")
    redis = world.dispatcher["redis"]
    await redis.delete(BANNED_KEY)  # Redis restarted without its data
    before = len(user.session.requests)
    await user.say("a fox")
    assert user.session.requests[before:] == []
    assert await redis.sismember(BANNED_KEY, str(user.user_id))


async def _last_seen(world: World, user_id: int) -> datetime:
    async with world.sessions() as session:
        user = await session.get(User, user_id, populate_existing=True)
    assert user is not None
    return user.last_seen_at


async def test_stats_count_the_day(world: World, admin: Chat) -> None:
    def numbers(text: str) -> dict[str, int]:
        found = {
            "users": r"users: (\d+)",
            "queued": r"Picture: .*queued (\d+)",
            "spent": r"Credits spent: (\d+)",
            "bought": r"bought: (\d+)",
        }
        return {
            key: int(match.group(1)) if (match := re.search(pattern, text)) else 0
            for key, pattern in found.items()
        }

    await admin.say("/stats")
    before = numbers(admin.texts()[-1])
    assert admin.texts()[-1].startswith("📊 <b>Today (UTC)</b>")
    user = Chat(world.dispatcher, world.sessions, admin.user_id + 505)
    await user.pay(f"stx-stats-{user.user_id}")
    await user.say("a lighthouse")
    await admin.say("/stats")
    after = numbers(admin.texts()[-1])
    assert after == {
        "users": before["users"] + 1,
        "queued": before["queued"] + 1,
        "spent": before["spent"] + 1,
        "bought": before["bought"] + 50,
    }
    assert "Queues: images " in admin.texts()[-1]


async def test_a_broadcast_is_recorded_queued_and_its_progress_shown(
    world: World, admin: Chat
) -> None:
    await admin.say("/broadcast Big news: video is here")
    started = admin.texts()[-1]
    match = re.match(r"📣 Broadcast #(\d+) started for (\d+) users", started)
    assert match, started
    broadcast_id = int(match.group(1))
    redis = world.dispatcher["redis"]
    assert await redis.zscore(queue_name(BROADCAST_QUEUE), f"broadcast:{broadcast_id}")
    await admin.say("/broadcast")
    assert admin.texts()[-1] == f"📣 Broadcast #{broadcast_id} is under way: sent 0, skipped 0."
