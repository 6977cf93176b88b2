"""The logs of a whole run as an operator's log search reads them: every line of every kadr
process is one JSON object, what was being handled is in fields, and neither the bot token,
the fal key nor the webhook secret appears anywhere (with DEBUG on, so libraries log their
requests too)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sandbox.control import TelegramSandbox
from sandbox.redis_server import PrivateRedis
from sandbox.stack import TEST_FAL_KEY, TEST_SECRET, TEST_TOKEN, Stack
from tests.conftest import deployment

KADR_LOGS = ("api.log", "worker.log")


@pytest.fixture(scope="module")
def debug_stack(
    tmp_path_factory: pytest.TempPathFactory, own_database_url: str, own_redis: PrivateRedis
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("logs-stack")
    extra = {"LOG_LEVEL": "DEBUG"}
    with deployment(workdir, own_database_url, own_redis.url, extra) as stack:
        yield stack


def run_a_conversation(stack: Stack) -> None:
    """A prompt that becomes a photo, a forged fal webhook, a wrong Telegram secret."""
    telegram = TelegramSandbox(stack.telegram_url)
    telegram.send_message(6101, "/start")
    telegram.send_message(6101, "a lighthouse at dawn")
    telegram.wait_for("sendPhoto", chat_id=6101, timeout=60)
    httpx.post(f"{stack.api_url}/webhooks/fal?job=x", content=b"{}")
    httpx.post(
        f"{stack.api_url}/webhooks/telegram",
        content=b"{}",
        headers={"X-Telegram-Bot-Api-Secret-Token": "not-the-secret"},
    )
    telegram.close()


def test_every_line_is_json_with_ids_and_no_secret(debug_stack: Stack) -> None:
    run_a_conversation(debug_stack)
    debug_stack.stop()
    lines = [
        line
        for name in KADR_LOGS
        for line in Path(debug_stack.workdir, name).read_text().splitlines()
        if line.strip()
    ]
    assert len(lines) > 20
    whole = "\n".join(lines)
    for secret in (TEST_TOKEN, TEST_FAL_KEY, TEST_FAL_KEY.split(":")[1], TEST_SECRET):
        assert secret not in whole
    records = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    assert any(r["message"].startswith("update ") and "update_id" in r for r in records)
    ended = [r for r in records if r["message"].endswith("ended: delivered")]
    assert len(ended) == 1 and {"job_id", "user_id"} <= ended[0].keys()
