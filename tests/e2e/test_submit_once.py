"""One submit per job at fal when the worker dies mid-submit: SIGTERMed at a deploy (arq
cancels the submit after its completion wait and runs it again at once) or SIGKILLed (arq
runs it again once its in-progress key expires). fal got the first request, so the job is
not sent again: its webhook delivers it, once.

The api and worker are this module's own (own database, own Redis) on the session's
stand-ins, with the default catalog: the fast one's 30 s deadline is shorter than arq's 20 s
completion wait plus a restart."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
import redis

from sandbox.control import FalSandbox, TelegramSandbox
from sandbox.redis_server import PrivateRedis
from sandbox.stack import Stack
from tests.fake_bot_api import message, post_update


@pytest.fixture(scope="module")
def own_stack(
    tmp_path_factory: pytest.TempPathFactory,
    own_database_url: str,
    own_redis: PrivateRedis,
    stack: Stack,
) -> Iterator[Stack]:
    env = {"SWEEP_INTERVAL": "1", "SWEEP_STALE_AFTER": "3", "WORKER_METRICS_PORT": "0"}
    own = Stack(
        tmp_path_factory.mktemp("submit-once"),
        own_database_url,
        own_redis.url,
        telegram_port=stack.telegram_port,
        fal_port=stack.fal_port,
        extra_env=env,
    )
    try:
        own.migrate()
        with own.starting_together():
            own.start_api()
            own.start_worker()
        yield own
    finally:
        own.stop()


def prompt(own: Stack, user_id: int, text: str, update_id: int | None = None) -> None:
    """The update Telegram would POST for a private text message, to this module's api."""
    update = message(update_id or 930_000 + user_id, user_id, text)
    response = post_update(own.api_url, update)
    assert response.status_code == 200, response.text


def submits_for(fal: FalSandbox, text: str) -> list[dict[str, object]]:
    return [r for r in fal.requests("submit") if (r.get("body") or {}).get("prompt") == text]


def delivered_once(
    own: Stack, telegram: TelegramSandbox, fal: FalSandbox, user_id: int, text: str
) -> None:
    """The job's photo came, and then the photo of a later prompt of the same user, queued
    and submitted behind anything the first job still had in the worker: no second submit
    or photo of the first came before it."""
    [photo] = telegram.wait_for("sendPhoto", chat_id=user_id, timeout=90)
    assert photo["params"]["caption"].startswith(text)
    fal.configure(latency={"default": 0.2})
    later = f"after {text}"
    prompt(own, user_id, later, update_id=940_000 + user_id)
    photos = telegram.wait_for("sendPhoto", chat_id=user_id, count=2, timeout=30)
    captions = [p["params"]["caption"] for p in photos]
    assert len(captions) == 2 and captions[1].startswith(later), captions
    assert len(submits_for(fal, text)) == 1


def wait_for_submit(fal: FalSandbox, text: str) -> None:
    deadline = time.monotonic() + 30
    while not submits_for(fal, text):
        assert time.monotonic() < deadline, "the worker never submitted"
        time.sleep(0.05)


def test_a_worker_sigtermed_mid_submit_submits_once(
    own_stack: Stack, telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    # fal takes the submit and holds its answer (and the result) past arq's 20 s completion
    # wait and the restart that follows.
    fal.configure(latency={"default": 40.0})
    fal.fault(on="submit", status=None, delay=40, after_handling=True)
    text = "a deploy at midnight"
    prompt(own_stack, 9301, text)
    wait_for_submit(fal, text)
    own_stack.service("worker").stop(signal.SIGTERM, grace=40)
    own_stack.restart("worker")
    delivered_once(own_stack, telegram, fal, 9301, text)


def test_a_worker_sigkilled_mid_submit_submits_once(
    own_stack: Stack, own_redis: PrivateRedis, telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    fal.configure(latency={"default": 15.0})
    fal.fault(on="submit", status=None, delay=15, after_handling=True)
    text = "a power cut at noon"
    prompt(own_stack, 9302, text)
    wait_for_submit(fal, text)
    own_stack.service("worker").kill()
    # The killed run's in-progress key expires (as it would after arq's timeout + 10 s, long
    # before a slow video's webhook): the next worker runs the submit again at once.
    client = redis.Redis.from_url(own_redis.url)
    for key in client.scan_iter("arq:in-progress:submit:*"):
        client.delete(key)
    client.close()
    own_stack.restart("worker")
    delivered_once(own_stack, telegram, fal, 9302, text)
