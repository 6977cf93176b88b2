"""`kadr demo` as someone who just cloned kadr runs it: one URL, a bot that answers, and after
Ctrl-C no process and no temporary directory left behind; and a Redis that a real kadr uses
is never touched."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from sandbox.control import TelegramSandbox
from sandbox.redis_server import PrivateRedis
from sandbox.stack import free_port

USER = 8001
URL_LINE = re.compile(r"open (http://127\.0\.0\.1:\d+/)")
STOPS_WITHIN = 60  # seconds: a generous bound so a hang fails the test instead of CI


def demo(tmp_path: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """TMPDIR makes its temporary directory one this test can look into."""
    environment = {**os.environ, "TMPDIR": str(tmp_path), **env}
    return subprocess.Popen(
        [sys.executable, "-m", "kadr", "demo", *args],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def url_of(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        if found := URL_LINE.search(line):
            return found.group(1)
    raise AssertionError(f"no URL; stderr: {process.stderr.read() if process.stderr else ''}")


@pytest.fixture
def running(
    tmp_path: Path, private_redis: PrivateRedis
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """REDIS_URL names a live Redis, as on a host that runs kadr for real."""
    process = demo(tmp_path, "--port", str(free_port()), "--fast", REDIS_URL=private_redis.url)
    try:
        yield process, url_of(process)
    finally:
        if process.poll() is None:  # the test failed early: let the demo clean up after itself
            process.terminate()
            process.wait(STOPS_WITHIN)


def test_the_demo_answers_and_ctrl_c_leaves_nothing_behind(
    tmp_path: Path, running: tuple[subprocess.Popen[str], str], private_redis: PrivateRedis
) -> None:
    process, url = running
    telegram = TelegramSandbox(url.rstrip("/"))
    try:
        telegram.send_message(USER, "/start")
        telegram.send_message(USER, "a paper crane")
        assert telegram.wait_for("sendMessage", chat_id=USER, timeout=STOPS_WITHIN)
        assert telegram.wait_for("sendPhoto", chat_id=USER, timeout=STOPS_WITHIN)
    finally:
        telegram.close()
    children = psutil.Process(process.pid).children(recursive=True)
    assert "redis-server" in {child.name() for child in children}
    assert private_redis.client().dbsize() == 0  # REDIS_URL's server: not one key written
    assert list(tmp_path.glob("kadr-demo-*"))

    process.send_signal(signal.SIGINT)

    assert process.wait(STOPS_WITHIN) == 0
    assert [child for child in children if child.is_running()] == []
    assert list(tmp_path.glob("kadr-demo-*")) == []


def test_no_redis_and_no_redis_server_is_one_clear_line(tmp_path: Path) -> None:
    process = demo(tmp_path, "--port", str(free_port()), PATH=str(tmp_path))
    _, stderr = process.communicate(timeout=STOPS_WITHIN)

    assert process.returncode == 1
    assert stderr.strip().count("\n") == 0
    assert "no redis-server on PATH" in stderr
    assert list(tmp_path.glob("kadr-demo-*")) == []


def test_a_taken_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = demo(tmp_path, "--port", str(port))
        _, stderr = process.communicate(timeout=STOPS_WITHIN)

    assert process.returncode == 1
    assert f"port {port} is taken" in stderr


def test_a_named_redis_with_keys_is_refused(tmp_path: Path, private_redis: PrivateRedis) -> None:
    private_redis.client().set("kadr:tg-next:bot", "1")
    process = demo(tmp_path, "--port", str(free_port()), "--redis", private_redis.url)
    _, stderr = process.communicate(timeout=STOPS_WITHIN)

    assert process.returncode == 1
    assert "is not empty (1 keys)" in stderr
    assert private_redis.client().keys() == [b"kadr:tg-next:bot"]
