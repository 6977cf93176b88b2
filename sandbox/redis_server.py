"""A private redis-server on a free port, for the demo, the tests and the benchmarks.

Private rather than the shared one on 6379 because the fault tests stop and restart it, and
because the benchmark's Redis memory figure must be kadr's alone. Nothing is persisted: a
restart loses every key, the harsh case a Redis fault should exercise.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from sandbox.stack import free_port


def answers(url: str) -> bool:
    """Whether a Redis server answers PING at `url`."""
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


class RedisServerError(RuntimeError):
    """redis-server is missing or did not answer."""


@dataclass
class PrivateRedis:
    """`append_only`: keep every key over a restart in the same workdir (fsync every second),
    as docker-compose.yml runs Redis: the inbox holds updates Telegram was told are stored."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    append_only: bool = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.workdir / "redis.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=0.5)

    def start(self, timeout: float = 10.0) -> PrivateRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerError("there is no redis-server on PATH")
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "everysec"] if self.append_only else []
        args += ["--dir", str(self.workdir), "--logfile", str(self.log)]
        self.process = subprocess.Popen(
            [binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            if answers(self.url):
                return self
            time.sleep(0.02)
        self.stop()
        tail = (
            self.log.read_text(errors="replace").strip().splitlines()[-1:]
            if self.log.exists()
            else []
        )
        raise RedisServerError(f"redis-server did not start: {' '.join(tail) or 'no log'}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def restart(self, down_for: float = 0.0) -> float:
        """Stop and start again on the same port; returns how long Redis did not answer."""
        started = time.monotonic()
        self.stop()
        time.sleep(down_for)
        self.start()
        return time.monotonic() - started
