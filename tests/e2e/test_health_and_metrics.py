"""Probes and metrics as an orchestrator and Prometheus see them, including a Redis outage."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sandbox.control import TelegramSandbox
from sandbox.redis_server import PrivateRedis
from sandbox.stack import Stack


@pytest.fixture
def lone_api(tmp_path: Path, database_url: str, private_redis: PrivateRedis) -> Iterator[Stack]:
    stack = Stack(tmp_path, database_url, private_redis.url)
    stack.start_api()
    yield stack
    stack.stop()


def test_livez(stack: Stack) -> None:
    response = httpx.get(f"{stack.api_url}/livez")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_follows_redis_down_and_up(lone_api: Stack, private_redis: PrivateRedis) -> None:
    url = f"{lone_api.api_url}/readyz"
    healthy = httpx.get(url)
    assert (healthy.status_code, healthy.json()["checks"]) == (
        200,
        {"redis": "ok", "database": "ok"},
    )

    private_redis.stop()
    down = httpx.get(url, timeout=3)  # the probe bounds each check to 1.5 s
    assert down.status_code == 503
    assert down.json()["checks"]["database"] == "ok"
    assert down.json()["checks"]["redis"] != "ok"
    assert httpx.get(f"{lone_api.api_url}/livez").status_code == 200

    private_redis.start()
    statuses = []
    for _ in range(40):
        statuses.append(httpx.get(url, timeout=3).status_code)
        if statuses[-1] == 200:
            break
        time.sleep(0.1)
    assert statuses[-1] == 200


def webhook_answers(stack: Stack) -> float:
    text = httpx.get(f"{stack.api_url}/metrics").text
    [line] = [
        line for line in text.splitlines() if line.startswith("kadr_telegram_webhook_seconds_count")
    ]
    return float(line.split()[-1])


def test_metrics_count_requests_and_updates(stack: Stack, telegram: TelegramSandbox) -> None:
    before = webhook_answers(stack)
    telegram.send_message(3001, "/start", repeat=2)
    telegram.wait_for("sendMessage", chat_id=3001)
    httpx.post(f"{stack.api_url}/webhooks/telegram", content=b"{}")
    assert webhook_answers(stack) - before == 3
    text = httpx.get(f"{stack.api_url}/metrics").text
    assert 'kadr_telegram_updates_total{outcome="accepted",type="any"}' in text
    assert 'kadr_telegram_updates_total{outcome="duplicate",type="any"}' in text
    assert 'kadr_telegram_updates_total{outcome="rejected",type="unauthorized"}' in text
    assert 'handler="/livez"' not in text
