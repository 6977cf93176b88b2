"""`kadr demo`: the whole bot on this machine, offline, with a Telegram-like chat page.

Everything runs as in production — api and worker as separate processes talking HTTP to the
Telegram and fal stand-ins — only the two outside services are stand-ins. Redis is borrowed
if one answers at REDIS_URL, otherwise a private one is started; the database is a fresh
SQLite file. Ctrl-C stops every process and removes the temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from sandbox.stack import Stack, free_port

DEFAULT_REDIS = "redis://localhost:6379/0"


class DemoError(Exception):
    """Something the person running the demo must fix; one line says what."""


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


@contextlib.contextmanager
def _redis(workdir: Path) -> Iterator[str]:
    """REDIS_URL if a server answers there, else a private redis-server for the demo."""
    url = os.environ.get("REDIS_URL", DEFAULT_REDIS)
    if _answers(url):
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise DemoError(
            "no Redis at " + url + " and no redis-server on PATH: "
            "install one (e.g. `apt-get install redis-server`) or set REDIS_URL"
        )
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        url = f"redis://127.0.0.1:{port}/0"
        for _ in range(100):
            if _answers(url):
                break
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def run_demo(*, port: int, fast: bool) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="kadr-demo-"))
    stack: Stack | None = None
    try:
        with _redis(workdir) as redis_url:
            stack = Stack(
                workdir,
                f"sqlite+aiosqlite:///{workdir}/kadr.db",
                redis_url,
                telegram_port=port,
                extra_env={"WORKER_METRICS_PORT": "0"},
            )
            stack.migrate()
            stack.start_telegram()
            stack.start_fal(*(["--fast"] if fast else []))
            stack.start_api()
            stack.start_worker()
            stack.run_kadr("set-webhook")
            print(f"kadr demo is running: open {stack.telegram_url}/ (Ctrl-C stops it)", flush=True)
            _wait_for_interrupt()
    finally:
        if stack is not None:
            stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _wait_for_interrupt() -> None:
    """Ctrl-C or SIGTERM ends the demo; both unwind through the same clean-up."""
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            signal.pause()
