"""A worker serves its own /metrics: queue depth and age, task outcomes, Telegram sends."""

from __future__ import annotations

import time

import httpx
import pytest

from sandbox.control import TelegramSandbox
from sandbox.stack import Stack, free_port

EXPECTED = [
    'kadr_queue_depth{queue="kadr:images"}',
    'kadr_queue_oldest_age_seconds{queue="kadr:images"}',
    'kadr_tasks_total{outcome="ok",task="deliver"}',
    'kadr_telegram_calls_total{method="sendPhoto",outcome="ok"}',
    'kadr_job_stage_seconds_count{mode="text_to_image",stage="total"}',
]


def scrape(url: str, needles: list[str], timeout: float = 90) -> str:
    """The page once every needle is on it (a task is counted after its last Telegram call),
    or as it was when time ran out."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            text = httpx.get(url).text
        except httpx.ConnectError:  # the server starts with the worker's start-up hook
            text = ""
        if all(needle in text for needle in needles):
            break
        time.sleep(0.2)
    return text


@pytest.mark.timeout(300)
def test_worker_metrics(stack: Stack, telegram: TelegramSandbox) -> None:
    port = free_port()
    stack.service("worker").stop()  # so this worker is the one that runs the jobs
    stack.start_worker("worker-metrics", WORKER_METRICS_PORT=str(port))
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        for user in range(8101, 8105):
            telegram.send_message(user, "a metric of foxes")
        text = scrape(url, EXPECTED)
        assert [needle for needle in EXPECTED if needle not in text] == []
    finally:
        stack.service("worker-metrics").stop()
        stack.restart("worker")
