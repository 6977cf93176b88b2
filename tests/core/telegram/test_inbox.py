"""The durable update inbox against a real Redis: dedup and append as one step, partitions by
chat, leases, acks that only the holder of the head can make, dead letters and requeueing."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from core.telegram.inbox import (
    DEAD,
    LEASE_SECONDS,
    PARTITIONS,
    PREFIX,
    TRIES,
    Entry,
    Inbox,
    InvalidUpdate,
    chat_of,
    inspect_inbox,
    partition_of,
    sent_key,
    update_id_of,
)
from sandbox.redis_server import PrivateRedis
from tests.fake_bot_api import message


@pytest.fixture
def inbox(redis: Redis) -> Inbox:
    return Inbox(redis, dedup_ttl=3600)


def raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


async def put(inbox: Inbox, body: dict[str, Any]) -> bool:
    update_id = update_id_of(body)
    return await inbox.accept(update_id, partition_of(body, update_id), raw(body))


async def partition_items(redis: Redis, partition: int) -> list[bytes]:
    return [Entry(item).update for item in await redis.lrange(f"{PREFIX}:{partition}", 0, -1)]


# --- reading an update at the webhook ----------------------------------------------------------


def test_update_id_must_be_an_integer_in_an_object() -> None:
    assert update_id_of({"update_id": 5}) == 5
    for body in ([], "x", {"update_id": "5"}, {"update_id": True}, {}):
        with pytest.raises(InvalidUpdate):
            update_id_of(body)


def test_the_chat_of_each_kind_of_update() -> None:
    assert chat_of(message(1, 42)) == 42
    edited = {"update_id": 2, "edited_message": message(2, -100500)["message"]}
    assert chat_of(edited) == -100500
    button = {
        "update_id": 3,
        "callback_query": {
            "id": "q",
            "from": {"id": 7, "is_bot": False, "first_name": "Bo"},
            "chat_instance": "ci",
            "data": "x",
            "message": message(3, -200)["message"],
        },
    }
    assert chat_of(button) == -200, "a button belongs to the chat of its message"
    member = {
        "update_id": 4,
        "my_chat_member": {
            "chat": {"id": -300, "type": "group", "title": "G"},
            "from": {"id": 8, "is_bot": False, "first_name": "Cy"},
            "date": 1_700_000_000,
            "old_chat_member": {
                "status": "left",
                "user": {"id": 1, "is_bot": True, "first_name": "k"},
            },
            "new_chat_member": {
                "status": "member",
                "user": {"id": 1, "is_bot": True, "first_name": "k"},
            },
        },
    }
    assert chat_of(member) == -300
    inline = {
        "update_id": 5,
        "inline_query": {
            "id": "i",
            "from": {"id": 9, "is_bot": False, "first_name": "Di"},
            "query": "",
            "offset": "",
        },
    }
    assert chat_of(inline) == 9, "without a chat, the sender's private chat"


def test_partitions_follow_the_chat_or_else_the_update_id() -> None:
    assert partition_of(message(1, 1000), 1) == 1000 % PARTITIONS
    assert partition_of(message(2, 1000), 2) == partition_of(message(1, 1000), 1)
    assert partition_of(message(3, -1001234), 3) == -1001234 % PARTITIONS
    poll = {
        "update_id": 777,
        "poll": {"id": "p", "question": "?", "options": [], "total_voter_count": 0},
    }
    assert chat_of(poll) is None
    assert partition_of(poll, 777) == 777 % PARTITIONS
    query = {
        "update_id": 778,
        "pre_checkout_query": {"id": "q", "from": {"id": 1000}, "currency": "XTR"},
    }
    assert chat_of(query) == 1000
    assert partition_of(query, 778) == 778 % PARTITIONS  # not behind the chat's backlog


# --- accept ---------------------------------------------------------------------------------


async def test_a_repeated_update_id_is_dropped_and_stored_once(inbox: Inbox, redis: Redis) -> None:
    body = message(11, 500, "first")
    assert await put(inbox, body)
    assert not await put(inbox, body)
    assert not await put(inbox, message(11, 500, "same id, other text"))
    assert await partition_items(redis, 500 % PARTITIONS) == [raw(body)]
    assert (await inbox.stats()).depth == 1


async def test_updates_of_one_chat_wait_in_their_order_in_one_partition(
    inbox: Inbox, redis: Redis
) -> None:
    bodies = [message(20 + i, 501, f"m{i}") for i in range(4)]
    for body in bodies:
        assert await put(inbox, body)
    await put(inbox, message(30, 502))
    assert await partition_items(redis, 501 % PARTITIONS) == [raw(b) for b in bodies]
    assert await partition_items(redis, 502 % PARTITIONS) == [raw(message(30, 502))]


async def test_an_acked_update_delivered_again_is_still_a_copy(inbox: Inbox) -> None:
    body = message(12, 503)
    await put(inbox, body)
    partition = 503 % PARTITIONS
    assert await inbox.claim("a", PARTITIONS, 0) == [partition]
    entry = await inbox.head(partition)
    assert entry is not None
    assert await inbox.ack(partition, "a", entry, 12)
    assert not await put(inbox, body), "Telegram's redelivery after the ack must be dropped"
    assert await inbox.head(partition) is None


# --- claim ----------------------------------------------------------------------------------


async def test_claim_leases_only_partitions_with_updates_and_no_holder(
    inbox: Inbox, redis: Redis
) -> None:
    await put(inbox, message(1, 3))
    await put(inbox, message(2, 7))
    await put(inbox, message(3, 7 + PARTITIONS))  # another chat of partition 7
    assert sorted(await inbox.claim("a", PARTITIONS, 0)) == [3, 7]
    assert await inbox.claim("b", PARTITIONS, 0) == [], "both are leased to a"
    assert await redis.get(f"{PREFIX}:3:lease") == b"a"
    assert 0 < await redis.pttl(f"{PREFIX}:7:lease") <= LEASE_SECONDS * 1000
    assert not await redis.exists(f"{PREFIX}:5:lease"), "an empty partition is not leased"

    await put(inbox, message(4, 9))
    assert await inbox.claim("b", PARTITIONS, 0) == [9], "a new partition is free for b"


async def test_claim_takes_at_most_count_starting_where_asked(inbox: Inbox) -> None:
    for chat in (10, 20, 30):
        await put(inbox, message(chat, chat))
    assert await inbox.claim("a", 1, 15) == [20]
    assert await inbox.claim("b", 5, 25) == [30, 10], "wrapping around past the last"


async def test_a_released_partition_can_be_claimed_again(inbox: Inbox) -> None:
    await put(inbox, message(1, 40))
    assert await inbox.claim("a", PARTITIONS, 0) == [40]
    await inbox.release(40, "b")  # not b's: stays a's
    assert await inbox.claim("b", PARTITIONS, 0) == []
    await inbox.release(40, "a")
    assert await inbox.claim("b", PARTITIONS, 0) == [40]


async def test_renew_reports_the_leases_lost(inbox: Inbox, redis: Redis) -> None:
    await put(inbox, message(1, 50))
    await put(inbox, message(2, 51))
    assert sorted(await inbox.claim("a", PARTITIONS, 0)) == [50, 51]
    await redis.set(f"{PREFIX}:51:lease", "b")
    await redis.pexpire(f"{PREFIX}:50:lease", 100)
    assert await inbox.renew("a", [50, 51]) == {51}
    assert await redis.pttl(f"{PREFIX}:50:lease") > 1000, "the lease still held is extended"
    assert await redis.get(f"{PREFIX}:51:lease") == b"b"


# --- ack ------------------------------------------------------------------------------------


async def test_ack_pops_the_head_for_the_holder_and_forgets_its_sends(
    inbox: Inbox, redis: Redis
) -> None:
    first, second = message(60, 60, "one"), message(61, 60, "two")
    await put(inbox, first)
    await put(inbox, second)
    assert await inbox.claim("a", PARTITIONS, 0) == [60]
    entry = await inbox.head(60)
    assert entry is not None and entry.update == raw(first)
    await inbox.begin(60)
    await redis.hset(sent_key(60), "1", '{"ok": true, "result": true}')

    assert await inbox.ack(60, "a", entry, 60)
    assert await partition_items(redis, 60) == [raw(second)]
    assert not await redis.exists(sent_key(60)), "the replayable sends go with the update"
    assert not await redis.hexists(TRIES, "60")
    assert not await inbox.ack(60, "a", entry, 60), "acking twice pops nothing more"
    assert await partition_items(redis, 60) == [raw(second)]


async def test_ack_by_another_owner_pops_nothing(inbox: Inbox, redis: Redis) -> None:
    await put(inbox, message(70, 70))
    assert await inbox.claim("a", PARTITIONS, 0) == [70]
    entry = await inbox.head(70)
    assert entry is not None
    await redis.hset(sent_key(70), "1", "x")
    assert not await inbox.ack(70, "b", entry, 70)
    assert await partition_items(redis, 70) == [raw(message(70, 70))]
    assert await redis.exists(sent_key(70))


async def test_a_consumer_whose_lease_expired_or_was_taken_pops_nothing(
    inbox: Inbox, redis: Redis
) -> None:
    await put(inbox, message(80, 80))
    assert await inbox.claim("a", PARTITIONS, 0) == [80]
    entry = await inbox.head(80)
    assert entry is not None

    await redis.delete(f"{PREFIX}:80:lease")  # a's lease ran out
    assert not await inbox.ack(80, "a", entry, 80)
    assert await partition_items(redis, 80) == [raw(message(80, 80))]

    assert await inbox.claim("b", PARTITIONS, 0) == [80]  # and b took the partition
    assert not await inbox.ack(80, "a", entry, 80)
    assert not await inbox.dead_letter(80, "a", entry, 80, "late", 1)
    assert await partition_items(redis, 80) == [raw(message(80, 80))]
    assert await inbox.dead_letters() == {}

    assert await inbox.ack(80, "b", entry, 80)
    assert await inbox.head(80) is None


async def test_ack_of_an_entry_not_at_the_head_pops_nothing(inbox: Inbox, redis: Redis) -> None:
    first, second = message(90, 90, "one"), message(91, 90, "two")
    await put(inbox, first)
    await put(inbox, second)
    assert await inbox.claim("a", PARTITIONS, 0) == [90]
    items = await redis.lrange(f"{PREFIX}:90", 0, -1)
    assert not await inbox.ack(90, "a", Entry(items[1]), 91)
    assert await partition_items(redis, 90) == [raw(first), raw(second)]


async def test_ack_extends_the_lease(inbox: Inbox, redis: Redis) -> None:
    await put(inbox, message(95, 95))
    await put(inbox, message(96, 95))
    assert await inbox.claim("a", PARTITIONS, 0) == [95]
    await redis.pexpire(f"{PREFIX}:95:lease", 200)
    entry = await inbox.head(95)
    assert entry is not None
    assert await inbox.ack(95, "a", entry, 95)
    assert await redis.pttl(f"{PREFIX}:95:lease") > 1000


# --- dead letters ---------------------------------------------------------------------------


async def test_a_dead_letter_is_moved_aside_with_its_reason_and_can_be_requeued(
    inbox: Inbox, redis: Redis
) -> None:
    bad, next_one = message(100, 100, "bad"), message(101, 100, "next")
    await put(inbox, bad)
    await put(inbox, next_one)
    assert await inbox.claim("a", PARTITIONS, 0) == [100]
    entry = await inbox.head(100)
    assert entry is not None
    await inbox.begin(100)

    assert await inbox.dead_letter(100, "a", entry, 100, "ValueError: boom", 5)
    assert await partition_items(redis, 100) == [raw(next_one)], "the chat moves on"
    assert not await redis.hexists(TRIES, "100"), "a requeued update gets all its tries"
    dead = await inbox.dead_letters()
    assert list(dead) == [100]
    assert dead[100]["reason"] == "ValueError: boom"
    assert dead[100]["tries"] == 5
    assert dead[100]["partition"] == 100
    assert json.loads(dead[100]["update"]) == bad
    assert (await inbox.stats()).dead == 1

    assert await inbox.requeue_dead() == 1
    assert await inbox.dead_letters() == {}
    assert await redis.hlen(DEAD) == 0
    assert await partition_items(redis, 100) == [raw(next_one), raw(bad)], "back at the end"
    stats = await inbox.stats()
    assert (stats.depth, stats.dead) == (2, 0)


async def test_requeue_with_no_dead_letters_moves_nothing(inbox: Inbox) -> None:
    assert await inbox.requeue_dead() == 0


# --- stats and `kadr inbox` ---------------------------------------------------------------


async def test_stats_count_waiting_updates_their_oldest_and_the_dead(
    inbox: Inbox, redis: Redis
) -> None:
    empty = await inbox.stats()
    assert (empty.depth, empty.oldest_age, empty.dead) == (0, 0.0, 0)

    old = Entry.of(raw(message(110, 110)), time.time() - 60)
    await redis.rpush(f"{PREFIX}:110", old.raw)
    await put(inbox, message(111, 110))
    await put(inbox, message(112, 111))
    await redis.hset(DEAD, "99", json.dumps({"partition": 1}))
    stats = await inbox.stats()
    assert stats.depth == 3
    assert 59 < stats.oldest_age < 120, "the oldest head counts, not the newest update"
    assert stats.dead == 1


async def test_kadr_inbox_lists_dead_letters_and_requeues_them(
    inbox: Inbox, redis: Redis, own_redis: PrivateRedis
) -> None:
    await put(inbox, message(120, 120))
    await put(inbox, message(121, 121))
    assert sorted(await inbox.claim("a", PARTITIONS, 0)) == [120, 121]
    entry = await inbox.head(120)
    assert entry is not None
    assert await inbox.dead_letter(120, "a", entry, 120, "RuntimeError: nope", 5)

    report = await inspect_inbox(own_redis.url, requeue=False)
    assert "waiting updates:      1" in report
    assert "dead letters:         1" in report
    assert "update 120" in report and "tries 5" in report and "RuntimeError: nope" in report
    assert "requeued" not in report

    report = await inspect_inbox(own_redis.url, requeue=True)
    assert "requeued:             1" in report
    assert "waiting updates:      2" in report
    assert "dead letters:         0" in report
    assert "update 120" not in report
    assert await partition_items(redis, 120) == [raw(message(120, 120))]


async def test_kadr_inbox_replays_one_dead_letter_and_keeps_the_others(
    inbox: Inbox, redis: Redis, own_redis: PrivateRedis
) -> None:
    for update_id in (130, 131):
        await put(inbox, message(update_id, update_id))
    assert sorted(await inbox.claim("a", PARTITIONS, 0)) == [2, 3]
    for update_id, partition in ((130, 2), (131, 3)):
        entry = await inbox.head(partition)
        assert entry is not None
        assert await inbox.dead_letter(partition, "a", entry, update_id, "KeyError: x", 5)

    report = await inspect_inbox(own_redis.url, requeue=False, replay=131)
    assert "requeued:             1" in report
    assert "update 130" in report and "update 131" not in report
    assert await partition_items(redis, 3) == [raw(message(131, 131))]
    assert await partition_items(redis, 2) == []
