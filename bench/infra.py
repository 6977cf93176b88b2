"""The services a benchmark owns outright: a private redis-server and a fresh database.

A private Redis (not the shared one on 6379) because the fault runs restart it and because its
memory figure must be kadr's alone; a fresh PostgreSQL database per stack because the jobs
table is what the results are read from.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import redis

from sandbox.stack import free_port

PG_ADMIN_URL = os.environ.get("KADR_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


class InfraError(RuntimeError):
    """A service the benchmark needs could not be started."""


@dataclass
class PrivateRedis:
    """redis-server on a free port without persistence: a restart loses every key, which is
    the harsh case the Redis fault wants."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=1)

    def start(self, timeout: float = 10.0) -> PrivateRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise InfraError("redis-server is not on PATH")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.workdir)]
        log = (self.workdir / "redis.log").open("ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return self
            except redis.RedisError:
                time.sleep(0.02)
        raise InfraError(f"redis-server on port {self.port} did not answer in {timeout}s")

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

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def create_database() -> tuple[str, str]:
    """A new, empty database; returns (its name, its SQLAlchemy asyncpg URL)."""
    name = f"kadr_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return name, f"{base}/{name}"


def drop_database(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def plain_url(sqlalchemy_url: str) -> str:
    """asyncpg wants postgresql://, SQLAlchemy postgresql+asyncpg://."""
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://")
