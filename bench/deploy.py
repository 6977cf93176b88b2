"""One kadr deployment for one workload: stand-ins, private Redis, fresh database, `kadr api`,
one or more `kadr worker`, and the bare baseline endpoint, all started in parallel.

Processes are `sandbox.stack`'s; this module only adds what a benchmark needs around them: a
supervisor that restarts a worker that exits on its own (as a container's restart policy
would), a sampler of memory and CPU per process and of the update inbox's depth, and a Redis
that keeps its data across a restart (append-only, as docker-compose.yml runs it): the inbox
holds updates Telegram was already told are stored.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from redis import Redis, RedisError

from bench.infra import PG_ADMIN_URL, create_database, drop_database
from core.telegram.inbox import PARTITIONS, Entry
from core.telegram.inbox import PREFIX as INBOX_PREFIX
from sandbox.control import FalSandbox, TelegramSandbox
from sandbox.redis_server import PrivateRedis
from sandbox.stack import KADR, PYTHON, TEST_SECRET, TEST_TOKEN, Service, Stack, free_port

SAMPLE_EVERY = 0.25
#: Importing aiogram costs a kadr process ~10 CPU seconds; several starting at once on two
#: shared cores need more than the stack's default minute.
STARTUP_TIMEOUT = 240.0


#: The role of `kadr worker` that consumes the Telegram update inbox (workers.worker.UPDATES).
UPDATES = "updates"
INBOX_DEAD = f"{INBOX_PREFIX}:dead"


def inbox_depth(client: Redis) -> int:
    """Updates stored by the webhook and not yet handled: an entry leaves its partition's list
    only when its handler finished (or it went to the dead letters)."""
    pipe = client.pipeline(transaction=False)
    for partition in range(PARTITIONS):
        pipe.llen(f"{INBOX_PREFIX}:{partition}")
    return sum(int(n) for n in pipe.execute())


def inbox_update_ids(client: Redis) -> set[int]:
    """The ids of the updates still in the inbox."""
    pipe = client.pipeline(transaction=False)
    for partition in range(PARTITIONS):
        pipe.lrange(f"{INBOX_PREFIX}:{partition}", 0, -1)
    return {
        int(json.loads(Entry(raw).update)["update_id"])
        for entries in pipe.execute()
        for raw in entries
    }


def dead_letters(client: Redis) -> int:
    return int(client.hlen(INBOX_DEAD))  # type: ignore[arg-type]


#: On one box the webhook must answer Telegram at once while the handlers may lag behind it (the
#: inbox holds what they owe), so the workers yield the CPU to the api when both want it.
WORKER_PRIORITY = ["nice", "-n", "10"]


class BenchStack(Stack):
    """`sandbox.stack.Stack` plus the bare baseline endpoint, and the workers at a lower CPU
    priority than the api, as docker-compose.yml gives them fewer CPU shares."""

    def start_worker(self, name: str = "worker", *args: str, **env: str) -> Service:
        return self._run(name, [*WORKER_PRIORITY, *KADR, "worker", *args], None, **env)

    def start_baseline(self, port: int) -> Service:
        args = [PYTHON, "-m", "bench.baseline", "--port", str(port)]
        return self._run("baseline", args, f"http://127.0.0.1:{port}/livez")


@dataclass
class Sample:
    t: float
    rss: dict[str, int]
    """Resident bytes by process name (api, worker-1, …, redis)."""
    redis_memory: int
    inbox: int = 0
    """Updates waiting in the inbox (stored, not yet handled)."""


@dataclass
class Usage:
    """What the sampler saw: RSS over time and CPU seconds consumed, per process name."""

    samples: list[Sample] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    _cpu_by_pid: dict[int, tuple[str, float]] = field(default_factory=dict)

    def peak_rss(self, name: str, since: float = 0.0) -> int:
        return max((s.rss.get(name, 0) for s in self.samples if s.t >= since), default=0)

    def peak_sum_rss(self, names: list[str], since: float = 0.0) -> int:
        """Peak of the sum at the same instant, not the sum of peaks."""
        return max(
            (sum(s.rss.get(n, 0) for n in names) for s in self.samples if s.t >= since), default=0
        )

    def peak_redis(self, since: float = 0.0) -> int:
        return max((s.redis_memory for s in self.samples if s.t >= since), default=0)

    def peak_inbox(self, since: float = 0.0) -> int:
        return max((s.inbox for s in self.samples if s.t >= since), default=0)

    def note_cpu(self, name: str, pid: int, seconds: float) -> None:
        self._cpu_by_pid[pid] = (name, seconds)
        totals: dict[str, float] = {}
        for owner, used in self._cpu_by_pid.values():
            totals[owner] = totals.get(owner, 0.0) + used
        self.cpu = totals

    def cpu_snapshot(self) -> dict[str, float]:
        return dict(self.cpu)


@dataclass
class Deployment:
    workdir: Path
    stack: BenchStack
    redis: PrivateRedis
    database: str
    workers: dict[str, tuple[str, ...]]
    """Worker name → the roles it serves (`--queue` each); empty: every role (no --queue)."""
    baseline_port: int
    pg_admin_url: str = PG_ADMIN_URL
    """The server `database` was created on, and is dropped from at the end."""
    usage: Usage = field(default_factory=Usage)
    restarts: list[tuple[float, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sampling: threading.Lock = field(default_factory=threading.Lock)
    _held: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def api_url(self) -> str:
        return self.stack.api_url

    @property
    def bot_api_url(self) -> str:
        """Where the webhook's answers run, as Telegram runs them: the stand-in's Bot API."""
        return f"{self.stack.telegram_url}/bot{TEST_TOKEN}"

    def file_messages(self, bodies: Iterable[bytes]) -> None:
        """Files the messages of updates the driver is about to post to kadr at the stand-in,
        as Telegram holds a message before it delivers it: a reaction on one finds it."""
        messages = [m for body in bodies if (m := json.loads(body).get("message"))]
        with contextlib.closing(self.telegram()) as telegram:
            telegram.know(messages)

    @property
    def baseline_url(self) -> str:
        return f"http://127.0.0.1:{self.baseline_port}"

    def telegram(self) -> TelegramSandbox:
        return TelegramSandbox(self.stack.telegram_url)

    def fal(self) -> FalSandbox:
        return FalSandbox(self.stack.fal_url)

    @property
    def consumers(self) -> list[str]:
        """The workers that consume the update inbox."""
        return [name for name, roles in self.workers.items() if not roles or UPDATES in roles]

    def inbox_depth(self) -> int:
        return inbox_depth(self.redis.client())

    def dead_letters(self) -> int:
        return dead_letters(self.redis.client())

    def inbox_update_ids(self) -> set[int]:
        return inbox_update_ids(self.redis.client())

    def worker_metrics_urls(self) -> list[str]:
        return [
            f"http://127.0.0.1:{self.stack.service(name).env['WORKER_METRICS_PORT']}/metrics"
            for name in self.workers
        ]

    def kill(self, name: str) -> None:
        """SIGKILL a worker or the api, and keep the supervisor off it until `restart`."""
        with self._lock:
            self._held.add(name)
            self.stack.service(name).kill()

    def restart(self, name: str) -> None:
        with self._lock:
            self.stack.restart(name)
            self._held.discard(name)

    def restart_redis(self, down_for: float) -> float:
        return self.redis.restart(down_for)

    def _supervise(self) -> None:
        """A worker whose arq loop died (Redis went away) is started again, and noted."""
        for name in self.workers:
            with self._lock:
                process = self.stack.service(name).process
                if name in self._held or process is None or process.poll() is None:
                    continue
                self.restarts.append((time.time(), name))
                self.stack.restart(name)

    def _processes(self) -> Iterator[tuple[str, int]]:
        for service in self.stack.services:
            if service.process is not None and service.process.poll() is None:
                yield service.name, service.process.pid
        if self.redis.pid is not None:
            yield "redis", self.redis.pid

    def _sample(self, client: Redis) -> None:
        rss: dict[str, int] = {}
        for name, pid in list(self._processes()):
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                with process.oneshot():
                    rss[name] = process.memory_info().rss
                    times = process.cpu_times()
                self.usage.note_cpu(name, pid, times.user + times.system)
        memory = depth = 0
        with contextlib.suppress(RedisError):
            info: dict[str, Any] = client.info("memory")  # type: ignore[assignment]
            memory = int(info["used_memory"])
            depth = inbox_depth(client)
        self.usage.samples.append(Sample(time.time(), rss, memory, depth))

    def _run_sampler(self) -> None:
        client = self.redis.client()
        while not self._stop.wait(SAMPLE_EVERY):
            with self._sampling:
                self._sample(client)
            self._supervise()

    def cpu_now(self) -> dict[str, float]:
        """CPU seconds per process name up to this instant (not the last sample's)."""
        with self._sampling:
            self._sample(self.redis.client())
            return self.usage.cpu_snapshot()

    def start_sampling(self) -> None:
        self._thread = threading.Thread(target=self._run_sampler, name="sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            self.stack.stop()
        self.redis.stop()
        drop_database(self.database, self.pg_admin_url)


def _set_webhook(stack: Stack) -> None:
    response = httpx.post(
        f"{stack.telegram_url}/bot{TEST_TOKEN}/setWebhook",
        json={"url": f"{stack.api_url}/webhooks/telegram", "secret_token": TEST_SECRET},
        timeout=30,
    )
    response.raise_for_status()


def _in_parallel(*starts: Callable[[], object]) -> None:
    with ThreadPoolExecutor(len(starts)) as pool:
        for future in [pool.submit(start) for start in starts]:
            future.result()


#: docker-compose.yml's layout with its `worker` service scaled to two: two workers for the
#: Telegram updates and the pictures (so one can be killed while the other goes on), one for
#: video; as before, two image workers and one video worker.
WORKERS: dict[str, tuple[str, ...]] = {
    "worker-1": (UPDATES, "images"),
    "worker-2": (UPDATES, "images"),
    "video-1": ("video",),
}


def worker_args(roles: tuple[str, ...]) -> list[str]:
    return [arg for role in roles for arg in ("--queue", role)]


def deploy(
    workdir: Path,
    *,
    workers: dict[str, tuple[str, ...]] | None = None,
    env: dict[str, str] | None = None,
    telegram_args: tuple[str, ...] = ("--no-fetch-urls",),
    pg_admin_url: str = PG_ADMIN_URL,
    baseline: bool = True,
) -> Deployment:
    """Everything up and the webhook registered, in about the time of the slowest start.
    `pg_admin_url`: the PostgreSQL server to make the database on; `baseline`: whether to
    start the bare endpoint (only the ingest step posts to it).

    The webhook is registered with one Bot API call rather than `kadr set-webhook`, which
    would cost one more aiogram import (seconds of CPU) on a machine that is starting six
    other Python processes at the same moment."""
    workdir = workdir.resolve()  # redis-server reads its log's path after entering --dir
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    # Append-only, as compose runs it: a Redis that forgot on restart would lose updates the
    # webhook had stored, which says nothing about kadr.
    private_redis = PrivateRedis(workdir, append_only=True).start()
    name, url = create_database(pg_admin_url)
    stack = BenchStack(
        workdir,
        url,
        private_redis.url,
        # The benchmark measures the pipeline, not the credits: every simulated user can pay.
        extra_env={"FREE_CREDITS_PER_DAY": "1000000", **(env or {})},
        startup_timeout=STARTUP_TIMEOUT,
    )
    roles = dict(workers or WORKERS)
    deployment = Deployment(workdir, stack, private_redis, name, roles, free_port(), pg_admin_url)
    starts: list[Callable[[], object]] = [
        stack.migrate,
        lambda: stack.start_telegram(*telegram_args),
        stack.start_fal,
    ]
    if baseline:
        starts.append(lambda: stack.start_baseline(deployment.baseline_port))
    try:
        _in_parallel(*starts)
        _set_webhook(stack)
        _in_parallel(
            stack.start_api,
            *(
                (
                    lambda n=n, r=r: stack.start_worker(
                        n, *worker_args(r), WORKER_METRICS_PORT=str(free_port())
                    )
                )
                for n, r in roles.items()
            ),
        )
    except BaseException:
        deployment.stop()
        raise
    deployment.start_sampling()
    return deployment
