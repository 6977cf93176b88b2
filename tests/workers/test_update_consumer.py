"""The update consumer against a real Redis and a real aiogram Dispatcher: in order per chat,
acked after the handler, failures retried then dead-lettered, outages waited out without
counting, a dead consumer's partition taken over, and a retried handler not sending twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiogram import Bot, Dispatcher, Router
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import SendMessage
from aiogram.types import CallbackQuery, Message, Update
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import OperationalError

from core.jobs.queue import JobQueues
from core.telegram import inbox as inbox_module
from core.telegram.inbox import PARTITIONS, PREFIX, TRIES, Inbox, partition_of, sent_key
from core.telegram.limits import SendLimits, TelegramLimiter
from core.telegram.outbox import Outbox, SendPacer
from tests.fake_bot_api import FakeSession, message
from workers import updates
from workers.updates import MAX_TRIES, UpdateConsumer


@pytest.fixture(autouse=True)
def short_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(updates, "RETRY_PAUSES", (0.01,) * (MAX_TRIES - 1))
    monkeypatch.setattr(updates, "OUTAGE_PAUSE", 0.01)
    monkeypatch.setattr(updates, "OUTAGE_PAUSE_CAP", 0.02)
    monkeypatch.setattr(updates, "POLL_EVERY", 0.01)


Behaviour = Callable[[Message, int], Awaitable[None]]


class Harness:
    """A Dispatcher with one message handler that records what it got (update id, chat,
    text, which try) and does what `behaviour` says for that text."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.inbox = Inbox(redis, dedup_ttl=3600)
        self.limiter = TelegramLimiter(redis)
        self.session = FakeSession()
        self.bot = Bot("42:TEST", session=self.session)
        self.handled: list[tuple[int, int, str]] = []
        self.pressed: list[int] = []
        self.tries: defaultdict[int, int] = defaultdict(int)
        self.behaviour: dict[str, Behaviour] = {}
        self.in_flight: set[int] = set()
        self.overlapped = False
        router = Router()

        @router.message()
        async def record(message: Message, event_update: Any) -> None:
            update_id = event_update.update_id
            chat = message.chat.id
            if chat in self.in_flight:
                self.overlapped = True
            self.in_flight.add(chat)
            try:
                self.tries[update_id] += 1
                behave = self.behaviour.get(message.text or "")
                if behave is not None:
                    await behave(message, self.tries[update_id])
                await asyncio.sleep(0)  # let other partitions' handlers interleave
            finally:
                self.in_flight.discard(chat)
            self.handled.append((update_id, chat, message.text or ""))

        @router.callback_query()
        async def press(query: CallbackQuery) -> None:
            self.pressed.append(query.from_user.id)

        self.dispatcher = Dispatcher()
        self.dispatcher.include_router(router)

    def texts(self, chat: int) -> list[str]:
        return [text for _, c, text in self.handled if c == chat]

    async def put(self, body: dict[str, Any]) -> None:
        update_id = body["update_id"]
        assert await self.inbox.accept(
            update_id, partition_of(body, update_id), json.dumps(body).encode()
        )

    @asynccontextmanager
    async def consuming(
        self, owner: str = "live", job_queues: JobQueues | None = None
    ) -> AsyncIterator[UpdateConsumer]:
        consumer = UpdateConsumer(
            self.inbox, self.dispatcher, Outbox(self.bot), owner, job_queues=job_queues
        )
        task = asyncio.create_task(consumer.run())
        try:
            yield consumer
        finally:
            consumer.stop()
            await asyncio.wait_for(task, 10)

    async def settled(
        self, condition: Callable[[], Awaitable[bool] | bool], within: float = 10
    ) -> None:
        """Wait until `condition` holds (the consumer works in the background)."""
        deadline = time.monotonic() + within
        while True:
            result = condition()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            assert time.monotonic() < deadline, f"the consumer did not get there in {within} s"
            await asyncio.sleep(0.01)

    async def empty(self) -> bool:
        return (await self.inbox.stats()).depth == 0


@pytest.fixture
async def harness(redis: Redis) -> AsyncIterator[Harness]:
    harness = Harness(redis)
    yield harness
    await harness.bot.session.close()


def button_press(update_id: int, user: int) -> dict[str, Any]:
    sender = {"id": user, "is_bot": False, "first_name": "U"}
    return {
        "update_id": update_id,
        "callback_query": {
            "id": str(update_id),
            "from": sender,
            "chat_instance": "1",
            "data": "x",
            "message": {"message_id": 1, "date": 0, "chat": {"id": user, "type": "private"}},
        },
    }


def updates_counted(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "kadr_telegram_updates_total", {"type": "message", "outcome": outcome}
    )
    return value or 0.0


async def test_each_chats_updates_are_handled_one_at_a_time_in_their_order(
    harness: Harness, redis: Redis
) -> None:
    ann, bob = 2001, 2002

    async def slow(message: Message, attempt: int) -> None:
        await asyncio.sleep(0.02)

    harness.behaviour["ann 0"] = slow
    for i in range(6):
        await harness.put(message(300 + 2 * i, ann, f"ann {i}"))
        await harness.put(message(301 + 2 * i, bob, f"bob {i}"))
    async with harness.consuming():
        await harness.settled(lambda: len(harness.handled) == 12)
        await harness.settled(harness.empty)
    assert harness.texts(ann) == [f"ann {i}" for i in range(6)]
    assert harness.texts(bob) == [f"bob {i}" for i in range(6)]
    assert not harness.overlapped, "two updates of one chat ran at once"
    assert await redis.keys(f"{PREFIX}:*:lease") == [], "drained partitions are let go"


async def test_while_the_jobs_tasks_are_behind_fewer_chats_are_handled_at_once(
    harness: Harness, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a peak the handlers share the process with the tasks of the jobs they made: while
    more than `TASKS_BEHIND` tasks are due, only `PARTITIONS_WHEN_BEHIND` chats at once."""
    monkeypatch.setattr(updates, "PARTITIONS_WHEN_BEHIND", 2)
    monkeypatch.setattr(updates, "BEHIND_EVERY", 0.01)
    queue = "kadr:test-jobs"
    await redis.zadd(queue, {f"task-{n}": 0 for n in range(updates.TASKS_BEHIND + 1)})
    release = asyncio.Event()
    most = 0

    async def hold(message: Message, attempt: int) -> None:
        nonlocal most
        most = max(most, len(harness.in_flight))
        await release.wait()

    harness.behaviour["hold"] = hold
    chats = range(7001, 7007)
    for n, chat in enumerate(chats):
        await harness.put(message(9_300_000 + n, chat, "hold"))
    async with harness.consuming(job_queues=JobQueues(redis, (queue,))):
        await harness.settled(lambda: len(harness.in_flight) == 2)
        assert most == 2
        await redis.zremrangebyrank(queue, 0, 9)  # caught up: the room is back
        await harness.settled(lambda: len(harness.in_flight) == len(chats))
        release.set()
        await harness.settled(harness.empty)
    await redis.delete(queue)
    assert sorted(chat for _, chat, _ in harness.handled) == list(chats)


async def test_a_message_is_handled_while_results_wait_in_line(harness: Harness) -> None:
    """Results hold the next twenty seconds of sends: a prompt's handler runs all the same,
    since what it answers at such a peak is a reaction, which no result waits for."""
    for _ in range(600):
        await harness.limiter.place_in_line()
    await harness.put(message(500, 2101, "a prompt"))
    await harness.put(button_press(501, 2102))
    async with harness.consuming():
        await harness.settled(lambda: harness.pressed == [2102] and len(harness.handled) == 1)
    assert (await harness.limiter.backlog()).results_waiting > 0


async def test_a_failing_update_is_tried_max_tries_times_then_dead_lettered_and_the_chat_moves_on(
    harness: Harness, redis: Redis
) -> None:
    chat = 2003

    async def boom(message: Message, attempt: int) -> None:
        raise ValueError(f"boom {attempt}")

    harness.behaviour["bad"] = boom
    dead_before = updates_counted("dead_lettered")
    await harness.put(message(400, chat, "bad"))
    await harness.put(message(401, chat, "next"))
    async with harness.consuming():
        await harness.settled(lambda: harness.texts(chat) == ["next"])
        await harness.settled(harness.empty)

    assert harness.tries[400] == MAX_TRIES
    dead = await harness.inbox.dead_letters()
    assert list(dead) == [400]
    assert dead[400]["reason"] == f"ValueError: boom {MAX_TRIES}"
    assert dead[400]["tries"] == MAX_TRIES
    assert json.loads(dead[400]["update"]) == message(400, chat, "bad")
    assert not await redis.hexists(TRIES, "400"), "the count goes with the update"
    assert updates_counted("dead_lettered") == dead_before + 1

    # Requeued after a fix, it is handled like any update.
    del harness.behaviour["bad"]
    assert await harness.inbox.requeue_dead() == 1
    async with harness.consuming():
        await harness.settled(lambda: harness.texts(chat) == ["next", "bad"])
        await harness.settled(harness.empty)
    assert await harness.inbox.dead_letters() == {}


async def test_a_handler_that_fails_a_few_times_is_handled_in_the_end(harness: Harness) -> None:
    async def flaky(message: Message, attempt: int) -> None:
        if attempt <= 2:
            raise RuntimeError("not yet")

    harness.behaviour["flaky"] = flaky
    redelivered = updates_counted("redelivered")
    await harness.put(message(500, 2004, "flaky"))
    async with harness.consuming():
        await harness.settled(lambda: harness.texts(2004) == ["flaky"])
        await harness.settled(harness.empty)
    assert harness.tries[500] == 3
    assert await harness.inbox.dead_letters() == {}
    assert updates_counted("redelivered") == redelivered + 1


@pytest.mark.parametrize(
    "outage",
    [
        RedisConnectionError("Connection refused"),
        OperationalError("SELECT 1", {}, ConnectionRefusedError("database is down")),
        TelegramNetworkError(SendMessage(chat_id=1, text="x"), "Request timeout error"),
    ],
    ids=["redis", "database", "telegram"],
)
async def test_an_outage_is_waited_out_without_counting_tries(
    harness: Harness, redis: Redis, outage: Exception
) -> None:
    """Longer than MAX_TRIES tries' worth of outage, and the update is still handled: the
    pauses for an outage are not the update's tries."""
    chat = 2005

    async def down(message: Message, attempt: int) -> None:
        if attempt <= MAX_TRIES + 2:
            raise outage

    harness.behaviour["during an outage"] = down
    handled = updates_counted("handled")
    await harness.put(message(600, chat, "during an outage"))
    await harness.put(message(601, chat, "after it"))
    async with harness.consuming():
        await harness.settled(lambda: harness.texts(chat) == ["during an outage", "after it"])
        await harness.settled(harness.empty)
    assert harness.tries[600] == MAX_TRIES + 3
    assert await harness.inbox.dead_letters() == {}
    assert updates_counted("handled") == handled + 2, "both handled on their first counted try"


async def test_an_update_left_by_a_dead_consumer_is_handled_once_its_lease_runs_out(
    harness: Harness, redis: Redis
) -> None:
    chat = 2006
    body = message(700, chat, "left behind")
    partition = partition_of(body, 700)
    await harness.put(body)
    await harness.put(message(701, chat, "after it"))
    # The dead consumer had claimed the partition and begun the update, then died.
    await redis.set(f"{PREFIX}:{partition}:lease", "dead", px=300)
    await harness.inbox.begin(700)
    holders: list[bytes | None] = []

    async def note_holder(message: Message, attempt: int) -> None:
        holders.append(await redis.get(f"{PREFIX}:{partition}:lease"))

    harness.behaviour["left behind"] = note_holder
    redelivered = updates_counted("redelivered")
    async with harness.consuming(owner="live"):
        await harness.settled(lambda: harness.texts(chat) == ["left behind", "after it"])
        await harness.settled(harness.empty)
    assert holders == [b"live"], "handled by the live consumer, under its own lease"
    assert updates_counted("redelivered") == redelivered + 1
    assert await harness.inbox.dead_letters() == {}


async def test_an_update_that_took_its_consumers_down_max_tries_times_is_dead_lettered(
    harness: Harness, redis: Redis
) -> None:
    chat = 2007
    await harness.put(message(800, chat, "poison"))
    await harness.put(message(801, chat, "after it"))
    for _ in range(MAX_TRIES):  # each try killed the process before the handler finished
        await harness.inbox.begin(800)
    async with harness.consuming():
        await harness.settled(lambda: harness.texts(chat) == ["after it"])
        await harness.settled(harness.empty)
    assert harness.tries[800] == 0, "not run a sixth time"
    dead = await harness.inbox.dead_letters()
    assert list(dead) == [800]
    assert "given up" in dead[800]["reason"]


async def test_an_unparseable_update_is_dead_lettered_at_once(
    harness: Harness, redis: Redis
) -> None:
    chat = 2008
    broken = {"update_id": 900, "message": {"chat": {"id": chat, "type": "private"}}}
    await harness.put(broken)
    await harness.put(message(901, chat, "after it"))
    async with harness.consuming():
        await harness.settled(lambda: harness.texts(chat) == ["after it"])
        await harness.settled(harness.empty)
    dead = await harness.inbox.dead_letters()
    assert list(dead) == [900]
    assert dead[900]["reason"].startswith("not a Telegram update")
    assert dead[900]["tries"] == 1, "no retry can help it"
    assert json.loads(dead[900]["update"]) == broken


async def test_an_update_of_a_kind_aiogram_does_not_know_is_acked(
    harness: Harness, redis: Redis
) -> None:
    chat = 2009
    future = {"update_id": 950, "some_future_kind": {"chat": {"id": chat}, "x": 1}}
    await harness.put(future)
    await harness.put(message(951, chat, "after it"))
    async with harness.consuming():
        await harness.settled(lambda: harness.texts(chat) == ["after it"])
        await harness.settled(harness.empty)
    assert await harness.inbox.dead_letters() == {}


async def test_a_consumer_that_lost_its_lease_mid_handler_leaves_the_update_to_the_holder(
    harness: Harness, redis: Redis
) -> None:
    chat = 2010
    body = message(1000, chat, "slow")
    lease = f"{PREFIX}:{partition_of(body, 1000)}:lease"
    await harness.put(body)

    async def stalled(message: Message, attempt: int) -> None:
        if attempt == 1:  # the process stalled; its lease ran out and another took it
            await redis.set(lease, "other", px=60_000)

    harness.behaviour["slow"] = stalled
    async with harness.consuming(owner="live") as consumer:
        await harness.settled(lambda: harness.texts(chat) == ["slow"])
        await harness.settled(lambda: not consumer._drains)  # it gave the partition up
        # The entry stays for its holder; the stalled consumer neither popped nor released.
        assert (await harness.inbox.head(partition_of(body, 1000))) is not None
        assert await redis.get(lease) == b"other"
        await redis.delete(lease)  # the other consumer died too: the update runs again
        await harness.settled(harness.empty)
    assert harness.tries[1000] == 2
    assert harness.texts(chat) == ["slow", "slow"]


async def test_a_handler_retried_after_sending_does_not_send_again(
    harness: Harness, redis: Redis
) -> None:
    limiter = TelegramLimiter(redis, SendLimits(private_per_second=50))
    harness.bot.session.middleware(SendPacer(redis, limiter))
    chat = 2011

    async def reply_then_fail(message: Message, attempt: int) -> None:
        sent = await message.answer("your picture is on its way")
        assert sent.message_id == 1000, "the same message, replayed on later tries"
        if attempt == 1:
            raise RuntimeError("the database write after the reply failed")

    harness.behaviour["draw a cat"] = reply_then_fail
    await harness.put(message(1100, chat, "draw a cat"))
    async with harness.consuming():
        await harness.settled(lambda: harness.texts(chat) == ["draw a cat"])
        await harness.settled(harness.empty)
    assert harness.tries[1100] == 2
    assert [r.__api_method__ for r in harness.session.requests] == ["sendMessage"]
    assert not await redis.exists(sent_key(1100)), "the stored answers go with the ack"


def test_partitions_are_spread_by_chat() -> None:
    """The tests above rely on their chats being in different partitions."""
    chats = range(2001, 2012)
    assert len({chat % PARTITIONS for chat in chats}) == len(chats)


async def test_a_consumer_stopped_during_an_outage_leaves_the_update_to_the_next(
    harness: Harness, redis: Redis
) -> None:
    chat = 2012
    body = message(1200, chat, "while Redis is down")
    lease = f"{PREFIX}:{partition_of(body, 1200)}:lease"

    async def down(message: Message, attempt: int) -> None:
        raise RedisConnectionError("Connection refused")

    harness.behaviour["while Redis is down"] = down
    await harness.put(body)
    async with harness.consuming():
        await harness.settled(lambda: harness.tries[1200] >= 3)
    assert await harness.inbox.head(partition_of(body, 1200)) is not None
    assert await harness.inbox.dead_letters() == {}
    assert not await redis.exists(lease), "let go at once, not after the lease runs out"

    del harness.behaviour["while Redis is down"]
    async with harness.consuming(owner="next"):
        await harness.settled(lambda: harness.texts(chat) == ["while Redis is down"])
        await harness.settled(harness.empty)


async def test_a_requeued_dead_letter_does_not_send_its_replies_again(
    harness: Harness, redis: Redis
) -> None:
    limiter = TelegramLimiter(redis, SendLimits(private_per_second=50))
    harness.bot.session.middleware(SendPacer(redis, limiter))
    chat = 2013
    broken = True

    async def reply_then_fail(message: Message, attempt: int) -> None:
        await message.answer("your picture is on its way")
        if broken:
            raise RuntimeError("a bug after the reply")

    harness.behaviour["draw a dog"] = reply_then_fail
    await harness.put(message(1300, chat, "draw a dog"))
    async with harness.consuming():
        await harness.settled(lambda: harness.tries[1300] == MAX_TRIES)
        await harness.settled(harness.empty)
    assert list(await harness.inbox.dead_letters()) == [1300]
    assert len(harness.session.requests) == 1

    broken = False  # the bug is fixed; the operator runs `kadr inbox --requeue`
    assert await harness.inbox.requeue_dead() == 1
    async with harness.consuming():
        await harness.settled(lambda: harness.texts(chat) == ["draw a dog"])
        await harness.settled(harness.empty)
    assert len(harness.session.requests) == 1, "the user got the same reply twice"


async def test_two_consumers_share_the_chats_and_a_slow_handler_keeps_its_partition(
    harness: Harness, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Leases of 0.5 s renewed in the background: a handler running for longer than that
    keeps its partition, so the other consumer neither runs that update again nor overtakes
    it with the chat's next one."""
    monkeypatch.setattr(inbox_module, "LEASE_SECONDS", 0.5)
    monkeypatch.setattr(updates, "LEASE_SECONDS", 0.5)
    harness.inbox = Inbox(redis, dedup_ttl=3600)
    Update.model_validate(message(1, 1, "x"))  # aiogram builds its models on first use:
    # a stall of the whole loop far longer than these leases, which would lose them all
    chats = [2014, 2015, 2016]

    async def slow(message: Message, attempt: int) -> None:
        await asyncio.sleep(0.8)

    harness.behaviour["2014 0"] = slow
    for i in range(4):
        for chat in chats:
            await harness.put(message(1400 + 10 * i + chat - 2014, chat, f"{chat} {i}"))
    async with harness.consuming(owner="a"), harness.consuming(owner="b"):
        await harness.settled(lambda: len(harness.handled) >= 12)
        await harness.settled(harness.empty)
    for chat in chats:
        assert harness.texts(chat) == [f"{chat} {i}" for i in range(4)]
    assert set(harness.tries.values()) == {1}, "an update was run again"
    assert not harness.overlapped


async def test_a_consumer_that_takes_back_a_partition_it_lost_does_not_drain_it_twice(
    harness: Harness, redis: Redis
) -> None:
    """The lease ran out under a handler (a stalled process, or Redis away for longer than
    the lease) and no one else took the partition: the same consumer claims it again. One
    chat's updates must still run one at a time and in order."""
    chat = 2017
    body = message(1500, chat, "long")
    lease = f"{PREFIX}:{partition_of(body, 1500)}:lease"
    entered = asyncio.Event()
    go_on = asyncio.Event()

    async def long(message: Message, attempt: int) -> None:
        entered.set()
        await go_on.wait()

    harness.behaviour["long"] = long
    await harness.put(body)
    await harness.put(message(1501, chat, "next"))
    async with harness.consuming(owner="a"):
        await asyncio.wait_for(entered.wait(), 10)
        await redis.delete(lease)  # expired while the handler ran
        # Give the consumer's claim loop (every 10 ms here) a chance to take it back.
        with contextlib.suppress(AssertionError):
            await harness.settled(lambda: harness.tries[1500] > 1, within=0.5)
        go_on.set()
        await harness.settled(lambda: "next" in harness.texts(chat))
        await harness.settled(harness.empty)
    assert not harness.overlapped, "two handlers of one chat ran at once"
    texts = harness.texts(chat)
    assert texts[-1] == "next" and set(texts[:-1]) == {"long"}, texts
