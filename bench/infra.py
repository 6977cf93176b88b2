"""PostgreSQL for the benchmarks: a fresh database per benchmark stack (the jobs table is what
the results are read from), on the server KADR_BENCH_PG names, or on a private cluster of the
benchmark's own that the chaos step may kill. (Its private Redis is sandbox.redis_server's.)
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from sandbox.stack import free_port

PG_ADMIN_URL = os.environ.get("KADR_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
#: The PostgreSQL server may be shared (tests running beside the benchmark): when it is full,
#: the benchmark's own reads wait for a free connection slot instead of breaking the run.
CONNECT_PATIENCE = 60.0
FULL = (asyncpg.TooManyConnectionsError, asyncpg.CannotConnectNowError)


async def connect(url: str) -> asyncpg.Connection:
    deadline = time.monotonic() + CONNECT_PATIENCE
    while True:
        try:
            return await asyncpg.connect(url)
        except FULL:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def fetch(url: str, sql: str) -> list[asyncpg.Record]:
    """The rows of one query, on a connection of its own (`url` in SQLAlchemy's form or
    asyncpg's): the benchmark reads kadr's tables from outside, a few times a run."""
    connection = await connect(plain_url(url))
    try:
        return await connection.fetch(sql)
    finally:
        await connection.close()


async def _admin(admin_url: str, sql: str) -> None:
    connection = await connect(admin_url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def create_database(admin_url: str = PG_ADMIN_URL) -> tuple[str, str]:
    """A new, empty database; returns (its name, its SQLAlchemy asyncpg URL)."""
    name = f"kadr_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return name, f"{base}/{name}"


def drop_database(name: str, admin_url: str = PG_ADMIN_URL) -> None:
    asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def plain_url(sqlalchemy_url: str) -> str:
    """asyncpg wants postgresql://, SQLAlchemy postgresql+asyncpg://."""
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://")


class PostgresError(RuntimeError):
    """The PostgreSQL server binaries are missing, or the private cluster did not start."""


def server_binaries() -> Path:
    """The newest installed server version's bin/ (Debian's layout, as scripts/services.sh
    looks for it), else the folder of an `initdb` on PATH."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda initdb: [int(part) for part in initdb.parts[-3].split(".") if part.isdigit()],
    )
    initdb = found[-1] if found else shutil.which("initdb")
    if initdb is None:
        raise PostgresError("no PostgreSQL server binaries: apt-get install postgresql")
    return Path(initdb).parent


def _server_user() -> str | None:
    """initdb and postgres refuse to run as root: then they run as Debian's postgres user."""
    return "postgres" if os.geteuid() == 0 else None


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of the benchmark's own, in a temporary directory (the postgres
    user must be able to enter it) on a free port. Its postmaster leads a process group of its
    own, so `kill` SIGKILLs it with every backend at once, as a crash of its container would,
    and `start` brings it back on the same data and port, recovering from its WAL.

    fsync is off: a killed server still finds every commit in the page cache, and the cluster
    is thrown away after the run (only a crash of the machine would lose writes)."""

    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kadr-pg-")))
    port: int = field(default_factory=free_port)
    binaries: Path = field(default_factory=server_binaries)
    process: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "postgres.log"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> PrivatePostgres:
        self.data.mkdir()
        user = _server_user()
        if user is not None:
            owner = pwd.getpwnam(user)
            for path in (self.directory, self.data):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        command = [self._binary("initdb"), "-D", str(self.data), "-U", "postgres", "-E", "UTF8"]
        subprocess.run(
            [*command, "--auth=trust"],
            user=user,
            group=user,
            cwd="/",
            check=True,
            capture_output=True,
        )
        return self

    def start(self, timeout: float = 60.0) -> PrivatePostgres:
        """Start the postmaster and wait until it accepts connections (after a kill, once its
        crash recovery is done)."""
        user = _server_user()
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.directory),
            "fsync": "off",
        }
        args = [self._binary("postgres"), "-D", str(self.data), "-p", str(self.port)]
        args += [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                args,
                user=user,
                group=user,
                cwd="/",
                start_new_session=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            if self._ready():
                return self
            time.sleep(0.05)
        tail = self.log.read_text(errors="replace").strip().splitlines()[-3:]
        raise PostgresError(f"postgres did not start: {' '.join(tail) or 'no log'}")

    def _binary(self, name: str) -> str:
        return str(self.binaries / name)

    def _ready(self) -> bool:
        check = [self._binary("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        return subprocess.run(check, check=False).returncode == 0

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend (its process group)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def remove(self) -> None:
        """Kill the cluster and delete it."""
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)
