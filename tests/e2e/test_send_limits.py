"""Telegram's flood limits under a crowd, end to end: a stack of its own whose Telegram
stand-in answers 429 above Telegram's limits (`--enforce-limits`: ~30 messages/s per bot,
~1/s per private chat), so going over them shows up as Telegram would show it.

What is asserted is what reached the stand-in: every user's messages, once each, and no 429
unless one was injected (the stand-in's own limits refuse what Telegram would). How fast kadr
sends, and the most messages in any second, belong in bench/ (`tg messages/s peak`,
`seconds over 30 messages`).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sandbox.control import Record, TelegramSandbox
from sandbox.redis_server import PrivateRedis
from sandbox.stack import Stack
from tests.conftest import deployment, telegram_of

#: What the stand-in counts against Telegram's limits (and kadr paces): putting something in
#: a chat. deleteMessage and the answers to buttons are not messages.
MESSAGE_PREFIXES = ("send", "edit", "copy", "forward")
SENDERS = 6  # threads posting users' messages, so a crowd arrives at once
#: After a 429: how many sends may already be on the wire (about 0.3 s of kadr's 29/s).
ON_THE_WIRE = 10
POLL_EVERY = 0.5  # the request log is read incrementally and not too often: reading it
# makes the stand-in serialise JSON on the loop that stamps kadr's requests


@pytest.fixture(scope="module")
def strict_stack(
    tmp_path_factory: pytest.TempPathFactory, own_database_url: str, own_redis: PrivateRedis
) -> Iterator[Stack]:
    """api and one `kadr worker` (inbox and every queue) with the default catalog: a few
    hundred jobs queue behind 29 sends/s, longer than the shared stack's shortened deadlines."""
    workdir = tmp_path_factory.mktemp("limits-stack")
    with deployment(
        workdir,
        own_database_url,
        own_redis.url,
        {},
        "--no-fetch-urls",
        "--enforce-limits",
    ) as stack:
        yield stack


@pytest.fixture
def strict_telegram(strict_stack: Stack) -> Iterator[TelegramSandbox]:
    with telegram_of(strict_stack) as sandbox:  # also refills the stand-in's flood buckets
        yield sandbox


class RequestLog:
    """Every Bot API call the stand-in recorded since the test began, read incrementally."""

    def __init__(self, telegram: TelegramSandbox) -> None:
        self._telegram = telegram
        self.records: list[Record] = []

    def pull(self) -> list[Record]:
        since = self.records[-1]["seq"] if self.records else 0
        response = self._telegram.http.get("/_sandbox/requests", params={"since": since})
        response.raise_for_status()
        self.records.extend(response.json())
        return self.records

    def wait(
        self, done: Callable[[list[Record]], bool], timeout: float, every: float = POLL_EVERY
    ) -> list[Record]:
        deadline = time.monotonic() + timeout
        while not done(self.pull()) and time.monotonic() < deadline:
            time.sleep(every)
        return self.records

    def ok(self, method: str) -> dict[int, list[Record]]:
        """Successful calls of `method` by chat."""
        by_chat: dict[int, list[Record]] = defaultdict(list)
        for record in self.records:
            if record["method"] == method and record["status"] == 200:
                by_chat[record["params"]["chat_id"]].append(record)
        return by_chat

    def messages(self) -> list[Record]:
        """Every message-sending call, whatever the stand-in answered."""
        return [r for r in self.records if r["method"].startswith(MESSAGE_PREFIXES)]

    def throttled(self) -> list[Record]:
        return [
            r for r in self.records if r["status"] == 429 or r["response"].get("error_code") == 429
        ]


def from_a_crowd(
    telegram: TelegramSandbox, users: range, text: Callable[[int], str]
) -> list[Record]:
    """Each user sends one message, all at about the same time (each call returns once the
    api took the update: kadr's webhook answers before any handler runs)."""
    base_url = telegram.base_url

    def send(chunk: range) -> list[Record]:
        client = TelegramSandbox(base_url)
        try:
            return [client.send_message(user, text(user), language_code="en") for user in chunk]
        finally:
            client.close()

    chunks = [users[n::SENDERS] for n in range(SENDERS)]
    with ThreadPoolExecutor(SENDERS) as pool:
        return [answer for answers in pool.map(send, chunks) for answer in answers]


def greeted_later(telegram: TelegramSandbox, log: RequestLog, user: int) -> None:
    """One more user says /start after the crowd and is greeted: a greeting kadr sent twice
    would have been in line before this one."""
    telegram.send_message(user, "/start", language_code="en")
    log.wait(lambda _: user in log.ok("sendMessage"), timeout=30)


def delivered(answers: list[Record]) -> list[Any]:
    """The webhook status of each simulated update (the api must have taken every one)."""
    return [d["status"] for answer in answers for d in answer["deliveries"]]


def test_three_hundred_prompts_at_once_stay_under_telegrams_limits(
    strict_telegram: TelegramSandbox,
) -> None:
    users = range(9_500_000, 9_500_300)
    log = RequestLog(strict_telegram)
    answers = from_a_crowd(strict_telegram, users, lambda user: f"a lantern for {user}")
    assert delivered(answers) == [200] * len(users)

    log.wait(lambda _: len(log.ok("sendPhoto")) >= len(users), timeout=90)
    photos, statuses = log.ok("sendPhoto"), log.ok("sendMessage")
    reactions = log.ok("setMessageReaction")
    assert sorted(photos) == list(users), f"{len(photos)} of {len(users)} got their picture"
    # Each prompt gets a 👀 in the webhook's answer (not a message: the results need the
    # sends), and a status message only while sends are not booked seconds ahead.
    assert sorted(reactions) == list(users)
    for user in users:
        [photo] = photos[user]
        assert photo["params"]["caption"].startswith(f"a lantern for {user}")
        [reaction] = reactions[user]
        assert reaction["params"]["reaction"] == [{"type": "emoji", "emoji": "👀"}]
        assert reaction["seq"] < photo["seq"]
        if user not in statuses:
            continue
        [status] = statuses[user]
        assert status["params"]["text"].startswith("⏳ In the queue…"), status["params"]["text"]
        [[cancel, improve]] = status["params"]["reply_markup"]["inline_keyboard"]
        assert (cancel["text"], improve["text"]) == ("✖ Cancel", "✨ Improve")
        assert status["seq"] < photo["seq"]

    assert log.throttled() == []


def test_a_hundred_and_twenty_starts_are_each_greeted_once(
    strict_telegram: TelegramSandbox,
) -> None:
    users = range(9_501_000, 9_501_120)
    log = RequestLog(strict_telegram)
    answers = from_a_crowd(strict_telegram, users, lambda _: "/start")
    assert delivered(answers) == [200] * len(users)

    log.wait(lambda _: len(log.ok("sendMessage")) >= len(users), timeout=60)
    greeted_later(strict_telegram, log, users.stop)
    greetings = log.ok("sendMessage")
    del greetings[users.stop]
    assert sorted(greetings) == list(users), f"{len(greetings)} of {len(users)} greeted"
    for user in users:
        [greeting] = greetings[user]
        assert greeting["params"]["text"].startswith("👋 Hi, User"), greeting["params"]["text"]
    assert {r["method"] for r in log.messages()} == {"sendMessage"}


def test_a_429_pauses_every_sender_for_its_retry_after(
    strict_telegram: TelegramSandbox,
) -> None:
    """Telegram's 429 to one greeting in the middle of a crowd stops every send of the bot
    for `retry_after`, the greetings already given a moment included; then all go, once."""
    users = range(9_502_000, 9_502_120)
    retry_after = 3
    log = RequestLog(strict_telegram)
    answers = from_a_crowd(strict_telegram, users, lambda _: "/start")
    assert delivered(answers) == [200] * len(users)
    # Once a few greetings are out, the rest wait in line for their moments: the next one
    # Telegram refuses.
    log.wait(lambda _: len(log.ok("sendMessage")) >= 10, timeout=30, every=0.05)
    strict_telegram.fault(method="sendMessage", status=429, retry_after=retry_after, times=1)

    log.wait(lambda _: len(log.ok("sendMessage")) >= len(users), timeout=60)
    greeted_later(strict_telegram, log, users.stop)
    greetings = log.ok("sendMessage")
    del greetings[users.stop]
    assert sorted(greetings) == list(users), f"{len(greetings)} of {len(users)} greeted"
    assert all(len(once) == 1 for once in greetings.values())
    # The stand-in refuses every message of the bot until retry_after has passed, as Telegram
    # does: a sender that did not pause would meet a 429 at each of its ~29 moments a second.
    # Only sends already on the wire when the 429 came back may meet one.
    throttled = log.throttled()
    assert 1 <= len(throttled) <= ON_THE_WIRE + 1, [(r["method"], r["t"]) for r in throttled]
