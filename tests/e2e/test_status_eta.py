"""The status message says where a job stands and when its result should come (issue 22,
item 5), end to end on a stack whose Telegram stand-in answers 429 above Telegram's limits
(`--enforce-limits`): fal takes one job at a time, so the last user's job waits in fal's
queue behind another and its status message shows it; the estimate goes by fal's recent
times of the model. The edits keep to the refresh rule (one per 5 s in a private chat at
most) and never meet a 429."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.control import FalSandbox, Record, TelegramSandbox
from sandbox.redis_server import PrivateRedis
from sandbox.stack import Stack
from tests.conftest import deployment, telegram_of

FAL_SECONDS = 6.0
REFRESH_PRIVATE = 5.0
FIRST, USERS = 9100, (9101, 9102, 9103)


@pytest.fixture(scope="module")
def eta_stack(
    tmp_path_factory: pytest.TempPathFactory, own_database_url: str, own_redis: PrivateRedis
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("eta-stack")
    with deployment(
        workdir, own_database_url, own_redis.url, {}, "--no-fetch-urls", "--enforce-limits"
    ) as stack:
        yield stack


@pytest.fixture
def eta_telegram(eta_stack: Stack) -> Iterator[TelegramSandbox]:
    with telegram_of(eta_stack) as sandbox:
        yield sandbox


@pytest.fixture
def eta_fal(eta_stack: Stack) -> Iterator[FalSandbox]:
    sandbox = FalSandbox(eta_stack.fal_url)
    sandbox.reset()
    yield sandbox
    sandbox.reset()
    sandbox.close()


def _status_texts(telegram: TelegramSandbox, chat: int) -> tuple[Record, list[Record]]:
    """The chat's status message and the edits of it Telegram took."""
    status = telegram.requests("sendMessage", chat_id=chat)[0]
    message_id = status["response"]["result"]["message_id"]
    edits = [
        r
        for r in telegram.requests("editMessageText", chat_id=chat)
        if r["params"]["message_id"] == message_id and r["status"] == 200
    ]
    return status, edits


def test_the_status_shows_the_jobs_ahead_and_when_the_result_comes(
    eta_telegram: TelegramSandbox, eta_fal: FalSandbox
) -> None:
    eta_fal.configure(latency={"default": 1.0}, distribution="fixed")
    eta_telegram.send_message(FIRST, "a first fox", language_code="en")
    eta_telegram.wait_for("sendPhoto", chat_id=FIRST, timeout=60)  # fal's time of the model

    eta_fal.configure(latency={"default": FAL_SECONDS}, max_concurrency=1)
    for user in USERS:
        eta_telegram.send_message(user, f"a fox for {user}", language_code="en")
    results = {
        user: eta_telegram.wait_for("sendPhoto", chat_id=user, timeout=90)[0] for user in USERS
    }

    shown = []
    for user in USERS:
        status, edits = _status_texts(eta_telegram, user)
        texts = [status["params"]["text"], *(e["params"]["text"] for e in edits)]
        assert any("🕒 Ready in about" in text for text in texts), texts
        shown_for = results[user]["t"] - status["t"]
        assert len(edits) <= 1 + shown_for // REFRESH_PRIVATE, (len(edits), shown_for)
        shown += texts
    # fal runs the first job it got, the second waits next in its queue, the third behind it
    assert any("👥 1 job ahead of yours: 0 in our queue, 1 at the model" in t for t in shown), shown
    throttled = [r for r in eta_telegram.requests() if r["status"] == 429]
    assert throttled == []
