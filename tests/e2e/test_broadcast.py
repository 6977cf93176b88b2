"""An admin's /broadcast to 1,000 users end to end, on a stack of its own whose Telegram
stand-in enforces Telegram's limits (`--enforce-limits`): the worker is SIGKILLed partway
and started again, and still nobody gets the text twice, nothing is throttled, users who
blocked the bot are skipped and counted, and the admin gets the count once."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import insert

from core.domain.models import User, utcnow
from core.infra.db import create_engine
from sandbox.control import Record, TelegramSandbox, wait_until
from sandbox.redis_server import PrivateRedis
from sandbox.stack import Stack
from tests.conftest import deployment
from tests.e2e.test_send_limits import RequestLog

ADMIN = 4_200_000
USERS = range(4_300_000, 4_301_000)
BLOCKED = set(USERS[::100])  # 10 of them
TEXT = "📣 kadr has a new model: try /settings"
#: How long the broadcast may take after the restart: the sweeper (every second here) takes
#: the dead run up again, and ~800 messages at Telegram's 30 a second take ~27 s.
FINISH_WITHIN = 120
STACK = "broadcast_stack"  # what `telegram` controls (tests/conftest.py)


@pytest.fixture(scope="module")
def broadcast_stack(
    tmp_path_factory: pytest.TempPathFactory, own_database_url: str, own_redis: PrivateRedis
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("broadcast-stack")
    env = {"ADMIN_IDS": str(ADMIN), "SWEEP_INTERVAL": "1"}
    with deployment(
        workdir, own_database_url, own_redis.url, env, "--no-fetch-urls", "--enforce-limits"
    ) as stack:
        yield stack


def known_to_the_bot(database_url: str, users: range) -> None:
    """The users as /start would have left them, inserted at once."""

    async def insert_users() -> None:
        engine = create_engine(database_url)
        now = utcnow()
        rows: list[dict[str, Any]] = [
            {
                "id": user,
                "language": "en",
                "username": None,
                "first_name": f"User {user}",
                "preferences": {},
                "banned": False,
                "created_at": now,
                "last_seen_at": now,
            }
            for user in users
        ]
        try:
            async with engine.begin() as connection:
                await connection.execute(insert(User), rows)
        finally:
            await engine.dispose()

    asyncio.run(insert_users())


def texts_to(log: RequestLog, chat_id: int) -> list[str]:
    return [
        r["params"]["text"]
        for r in log.records
        if r["method"] == "sendMessage" and r["status"] == 200 and r["params"]["chat_id"] == chat_id
    ]


def greetings_to(log: RequestLog, chat_id: int) -> list[str]:
    return [t for t in texts_to(log, chat_id) if t.startswith("👋")]


def broadcast_sends(log: RequestLog) -> list[Record]:
    return [
        r for r in log.records if r["method"] == "sendMessage" and r["params"].get("text") == TEXT
    ]


@pytest.mark.timeout(300)
def test_a_broadcast_to_a_thousand_users_survives_a_killed_worker(
    broadcast_stack: Stack, telegram: TelegramSandbox
) -> None:
    telegram.send_message(ADMIN, "/start")
    assert telegram.wait_for("sendMessage", chat_id=ADMIN)
    known_to_the_bot(broadcast_stack.database_url, USERS)
    for user in BLOCKED:
        telegram.block(user)

    log = RequestLog(telegram)
    telegram.send_message(ADMIN, f"/broadcast {TEXT}")
    started = wait_until(
        lambda: (
            [t for t in texts_to(log, ADMIN) if t.startswith("📣 Broadcast")] if log.pull() else []
        ),
        1,
        timeout=20,
    )
    assert started == ["📣 Broadcast #1 started for 1001 users. /broadcast shows how it goes."]

    log.wait(lambda _: len(broadcast_sends(log)) >= 200, timeout=60, every=0.1)
    broadcast_stack.service("worker").kill()
    killed_at, sent_before = time.time(), len(broadcast_sends(log))
    assert 200 <= sent_before < len(USERS), sent_before
    broadcast_stack.restart("worker")

    def finished(_: list[Record]) -> bool:
        return any("done" in t for t in texts_to(log, ADMIN))

    log.wait(finished, timeout=FINISH_WITHIN, every=1.0)
    # The admin's next message is answered after the report: a second report, or a second
    # send to anyone, would have come before that answer.
    telegram.send_message(ADMIN, "/start")
    log.wait(lambda _: len(greetings_to(log, ADMIN)) >= 2, timeout=30)

    sends = broadcast_sends(log)
    got = Counter(r["params"]["chat_id"] for r in sends if r["status"] == 200)
    refused = Counter(r["params"]["chat_id"] for r in sends if r["status"] == 403)
    before_kill = {r["params"]["chat_id"] for r in sends if r["t"] <= killed_at}
    after_kill = {r["params"]["chat_id"] for r in sends if r["t"] > killed_at}
    twice = {user: n for user, n in (got + refused).items() if n > 1}
    assert twice == {}, f"sent more than once: {twice}"
    assert after_kill, "the broadcast did not go on after the restart"
    resumed = min(r["t"] for r in sends if r["t"] > killed_at) - killed_at
    print(f"{sent_before} sent before the kill; the broadcast went on {resumed:.1f}s after")
    assert got[ADMIN] == 1
    # Each recipient is claimed before the send, so the one claimed when the worker died
    # gets nothing (at most once, never twice): at most that user, the next in id order.
    audience = {ADMIN, *USERS}
    lost = sorted(audience - set(got) - set(refused))
    assert len(lost) <= 1, f"{len(lost)} users never got it: {lost[:10]}"
    for user in lost:
        assert max(before_kill) < user < min(after_kill), (user, max(before_kill))
    assert set(refused) == BLOCKED - set(lost)
    assert set(got) == audience - BLOCKED - set(lost)

    reports = [t for t in texts_to(log, ADMIN) if "done" in t]
    assert len(reports) == 1, reports
    [(sent, skipped)] = re.findall(r"sent (\d+), skipped (\d+)", reports[0])
    # A send that went out just before the kill may have missed being counted.
    assert len(got) - 1 <= int(sent) <= len(got), (reports, len(got))
    assert len(refused) - 1 <= int(skipped) <= len(refused), (reports, len(refused))
    assert int(sent) + int(skipped) >= len(audience) - 2, reports
    assert log.throttled() == []
