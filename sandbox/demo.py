"""`kadr demo`: the whole bot on this machine, offline, with a Telegram-like chat page.

Everything runs as in production — api and worker as separate processes talking HTTP to the
Telegram and fal stand-ins — only the two outside services are stand-ins. Redis is a private
redis-server of its own: kadr's keys have fixed names, so a demo on a Redis that a real kadr
uses would take its jobs and spend its send budget. REDIS_URL is never read; `--redis URL`
names another Redis explicitly, and only an empty database there is accepted. The database
is a fresh SQLite file. Ctrl-C (or SIGTERM) stops every process and removes the temporary directory.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType

import redis

from sandbox.redis_server import PrivateRedis, RedisServerError
from sandbox.stack import ServiceFailed, Stack

REDIS_START_TIMEOUT = 10.0
WATCH_INTERVAL = 0.5  # seconds between checks that every process is still alive
#: Seconds fal "works" on a request: long enough to see the bot's progress messages.
DEMO_LATENCY = 2.0


class DemoError(Exception):
    """Something the person running the demo must fix; one line says what."""


def run_demo(*, port: int, fast: bool, redis_url: str | None = None) -> None:
    """Returns when interrupted, after every process it started has stopped."""
    _interrupt_on_signals()
    with contextlib.suppress(KeyboardInterrupt), contextlib.ExitStack() as cleanup:
        _check_port(port)
        print(
            "kadr demo: starting the stand-ins, Redis, kadr api and the workers…",
            flush=True,
        )
        workdir = Path(tempfile.mkdtemp(prefix="kadr-demo-"))
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        redis_url = cleanup.enter_context(_redis(workdir, redis_url))
        stack = Stack(
            workdir,
            f"sqlite+aiosqlite:///{workdir}/kadr.db",
            redis_url,
            fal_latency=Stack.fal_latency if fast else DEMO_LATENCY,
            telegram_port=port,
            extra_env={"WORKER_METRICS_PORT": "0"},
        )
        cleanup.callback(stack.stop)
        try:
            _start_chat(stack)
            print(f"kadr demo is running: open {stack.telegram_url}/ (Ctrl-C stops it)", flush=True)
            stack.start_worker()
        except ServiceFailed as exc:
            raise DemoError(str(exc)) from None
        _watch(stack)


def _start_chat(stack: Stack) -> None:
    """Everything the chat page needs to get an answer: the stand-ins, a migrated database,
    `kadr api` and the webhook set. Start-up is mostly each process importing aiogram, so the
    one-shot commands overlap the rest on helper threads; every long-lived process is started
    from this thread, so an interrupt never races one into being after the clean-up. Workers
    start after this: generation jobs wait in Redis the few seconds they take to come up, and
    the URL comes sooner on a busy machine."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        migrated = pool.submit(stack.migrate)
        stack.start_telegram()
        webhook_set = pool.submit(stack.run_kadr, "set-webhook")
        stack.start_fal()
        migrated.result()
        stack.start_api()
        webhook_set.result()


def _watch(stack: Stack) -> None:
    """Runs until interrupted; a process that dies on its own ends the demo with its log."""
    while True:
        for service in stack.services:
            code = service.process.poll() if service.process else None
            if code is not None:
                raise DemoError(f"{service.name} exited with code {code}:\n{service.tail()}")
        time.sleep(WATCH_INTERVAL)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """The first Ctrl-C or SIGTERM unwinds through the clean-up; more would cut it short."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


def _interrupt_on_signals() -> None:
    """Set explicitly: a shell starting the demo in the background leaves SIGINT ignored."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)


def _check_port(port: int) -> None:
    """A taken port would make the chat page someone else's: say so instead. SO_REUSEADDR as
    uvicorn sets it, so connections of a demo that just stopped do not count as taken."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise DemoError(
                f"port {port} is taken; choose another with `kadr demo --port N`"
            ) from None


@contextlib.contextmanager
def _redis(workdir: Path, given: str | None) -> Iterator[str]:
    """A private redis-server for the demo, or `given` when its database is empty."""
    if given is not None:
        _check_empty(given)
        yield given
        return
    server = PrivateRedis(workdir)
    try:
        server.start(REDIS_START_TIMEOUT)
    except RedisServerError as exc:
        raise DemoError(
            f"{exc}: install one (e.g. `apt-get install redis-server`) or name a Redis "
            "with --redis URL"
        ) from None
    try:
        yield server.url
    finally:
        server.stop()


def _check_empty(url: str) -> None:
    """A database with keys may be a real kadr's: refuse it rather than share its queues."""
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=0.5)
    try:
        keys = client.dbsize()
    except redis.RedisError as exc:
        raise DemoError(f"no Redis answers at {url}: {exc}") from None
    finally:
        client.close()
    if keys:
        raise DemoError(
            f"the Redis database at {url} is not empty ({keys} keys); the demo uses only an empty "
            "one (pick another database number, e.g. redis://host:6379/9)"
        )
