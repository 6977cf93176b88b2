"""Runs kadr and its stand-ins as real processes on this machine.

Tests, the demo and the benchmarks all need the same thing: the Telegram and fal stand-ins,
`kadr migrate`, `kadr api` and one or more `kadr worker`, wired by environment variables
exactly as in production. This module is that wiring, and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PYTHON = sys.executable
KADR = [PYTHON, "-m", "kadr"]
TEST_TOKEN = "123456789:AAE-sandbox-token-0123456789abcdef"
TEST_SECRET = "sandbox-webhook-secret"
COMMAND_TIMEOUT = 120
TEST_FAL_KEY = "sandbox-fal-key-id:sandbox-fal-key-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServiceFailed(RuntimeError):
    """A process exited or never became ready; the message carries the tail of its log."""


@dataclass
class Service:
    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    ready_url: str | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self, cwd: Path) -> Service:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.args, env=self.env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        return self

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServiceFailed(f"{self.name} exited {self.process.returncode}: {self.tail()}")
            if self.ready_url is None:
                return
            try:
                if httpx.get(self.ready_url, timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise ServiceFailed(f"{self.name} not ready after {timeout}s: {self.tail()}")

    def stop(self, sig: signal.Signals = signal.SIGTERM, grace: float = 15.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Stack:
    """One kadr deployment on localhost: stand-ins, api, workers, sharing one workdir."""

    workdir: Path
    database_url: str
    redis_url: str
    fal_latency: float = 0.05
    telegram_port: int = field(default_factory=free_port)
    fal_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    startup_timeout: float = 120.0
    services: list[Service] = field(default_factory=list)
    _starting: list[Service] | None = field(default=None, repr=False)

    @property
    def telegram_url(self) -> str:
        return f"http://127.0.0.1:{self.telegram_port}"

    @property
    def fal_url(self) -> str:
        return f"http://127.0.0.1:{self.fal_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("TELEGRAM_", "FAL_", "PUBLIC_URL", "DATABASE_URL", "REDIS_URL"))
        }
        env.update(
            TELEGRAM_BOT_TOKEN=TEST_TOKEN,
            TELEGRAM_API_URL=self.telegram_url,
            TELEGRAM_WEBHOOK_SECRET=TEST_SECRET,
            PUBLIC_URL=self.api_url,
            FAL_KEY=TEST_FAL_KEY,
            FAL_QUEUE_URL=self.fal_url,
            FAL_REST_URL=self.fal_url,
            FAL_RUN_URL=f"{self.fal_url}/run",
            FAL_JWKS_URL=f"{self.fal_url}/.well-known/jwks.json",
            FAL_OPENAPI_URL=f"{self.fal_url}/api/openapi/queue/openapi.json",
            REDIS_URL=self.redis_url,
            DATABASE_URL=self.database_url,
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def _run(self, name: str, args: list[str], ready_url: str | None, **env: str) -> Service:
        service = Service(
            name, args, self.env(**env), self.workdir / f"{name}.log", ready_url
        ).start(self.workdir)
        self.services.append(service)
        if self._starting is None:
            service.wait_ready(self.startup_timeout)
        else:
            self._starting.append(service)
        return service

    @contextlib.contextmanager
    def starting_together(self) -> Iterator[None]:
        """Processes started inside boot side by side and are waited for at the end: start-up
        is mostly imports, so on a busy machine this saves most of the wall time."""
        self._starting = []
        try:
            yield
            for service in self._starting:
                service.wait_ready(self.startup_timeout)
        finally:
            self._starting = None

    def run_kadr(self, *args: str, **env: str) -> str:
        """Run a one-shot `kadr` command (migrate, set-webhook, …) and return its output."""
        result = subprocess.run(
            [*KADR, *args],
            env=self.env(**env),
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        if result.returncode != 0:
            raise ServiceFailed(f"kadr {' '.join(args)} failed: {result.stdout}{result.stderr}")
        return result.stdout

    def migrate(self) -> None:
        self.run_kadr("migrate")

    def start_telegram(self, *args: str) -> Service:
        return self._run(
            "telegram",
            [PYTHON, "-m", "sandbox.telegram", "--port", str(self.telegram_port), *args],
            f"{self.telegram_url}/_sandbox/requests",
        )

    def start_fal(self, *args: str) -> Service:
        return self._run(
            "fal",
            [
                PYTHON,
                "-m",
                "sandbox.fal",
                "--port",
                str(self.fal_port),
                "--latency",
                str(self.fal_latency),
                *args,
            ],
            f"{self.fal_url}/.well-known/jwks.json",
        )

    def start_api(self, **env: str) -> Service:
        return self._run(
            "api", [*KADR, "api", "--port", str(self.api_port)], f"{self.api_url}/livez", **env
        )

    def start_worker(self, name: str = "worker", *args: str, **env: str) -> Service:
        return self._run(name, [*KADR, "worker", *args], None, **env)

    def start_deployment(self, *telegram_args: str) -> None:
        """Both stand-ins, a migrated database, `kadr api` and one `kadr worker` booted side
        by side, then the webhook registered by `kadr set-webhook` as an operator would."""
        with self.starting_together():
            self.start_telegram(*telegram_args)
            self.start_fal()
            self.migrate()
            self.start_api()
            self.start_worker()
        self.run_kadr("set-webhook")

    def service(self, name: str) -> Service:
        return next(s for s in reversed(self.services) if s.name == name)

    def restart(self, name: str) -> Service:
        """Start a fresh process in place of one that was stopped or killed."""
        old = self.service(name)
        self.services.remove(old)
        old.stop()
        fresh = Service(name, old.args, old.env, old.log_path, old.ready_url).start(self.workdir)
        self.services.append(fresh)
        fresh.wait_ready(self.startup_timeout)
        return fresh

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.services.clear()
