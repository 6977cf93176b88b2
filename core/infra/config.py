"""The configuration contract (README's Configuration table), read from the environment and `.env`.

Every process loads one `Config` at start-up and names what it needs; a missing or malformed
value stops it with one line naming the variable, never a traceback.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from functools import cached_property
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ProcessKind = Literal["api", "worker", "migrate", "ops", "admin"]

_TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]{20,}$")
#: Telegram's rule for setWebhook's secret_token is 1-256 of these; kadr asks for 16 at least,
#: since the secret is all that tells Telegram's updates from anyone's.
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{16,256}$")
_LOOPBACK_NAMES = frozenset({"localhost"})

#: What each process kind cannot start without (README's Configuration table, "required by …").
REQUIRED: dict[ProcessKind, tuple[str, ...]] = {
    "api": ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "PUBLIC_URL"),
    "worker": ("TELEGRAM_BOT_TOKEN", "FAL_KEY", "PUBLIC_URL"),
    "migrate": (),
    "ops": ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "PUBLIC_URL"),
    #: The operator's grant, ban and stats: the database and Redis only.
    "admin": (),
}


class ConfigError(Exception):
    """A configuration problem worth exactly one line on stderr."""


class Config(BaseSettings):
    """The fixed names of the configuration contract plus a few operational knobs."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=True)

    TELEGRAM_BOT_TOKEN: str = ""
    TELEGRAM_API_URL: str = "https://api.telegram.org"
    TELEGRAM_WEBHOOK_SECRET: str = ""
    PUBLIC_URL: str = ""
    FAL_KEY: str = ""
    FAL_QUEUE_URL: str = "https://queue.fal.run"
    FAL_REST_URL: str = "https://rest.fal.ai"
    #: fal's synchronous API (the answer in the same call): the prompt helper's LLM.
    FAL_RUN_URL: str = "https://fal.run"
    FAL_JWKS_URL: str = "https://rest.alpha.fal.ai/.well-known/jwks.json"
    #: Where fal publishes each model's queue OpenAPI (`?endpoint_id=<model>`), read by
    #: `kadr check` only.
    FAL_OPENAPI_URL: str = "https://fal.ai/api/openapi/queue/openapi.json"
    REDIS_URL: str = "redis://localhost:6379/0"
    DATABASE_URL: str = "sqlite+aiosqlite:///./data/kadr.db"
    ADMIN_IDS: str = ""
    FREE_CREDITS_PER_DAY: int = Field(10, ge=0)

    LOG_LEVEL: str = "INFO"
    TELEGRAM_MAX_CONNECTIONS: int = Field(40, ge=1, le=100)
    UPDATE_DEDUP_TTL: int = Field(48 * 3600, ge=24 * 3600)
    WORKER_METRICS_PORT: int = Field(9101, ge=0, le=65535)
    WORKER_NAME: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    TELEGRAM_SENDS_PER_SECOND: float = Field(29, gt=0, le=30)
    SWEEP_INTERVAL: int = Field(60, ge=1, le=60)
    SWEEP_STALE_AFTER: int = Field(60, ge=1)
    USER_JOBS_PER_MINUTE: int = Field(10, ge=1)
    USER_LIVE_JOBS: int = Field(5, ge=1)
    DATABASE_POOL_SIZE: int = Field(20, ge=1, le=200)
    #: The least share of a job's price, in percent, that must be left once fal is paid:
    #: `kadr api` and `kadr worker` refuse a catalog with a model under it (core/domain/margins.py).
    MIN_MARGIN_PERCENT: float = Field(20, ge=0, lt=100)
    #: Seconds a Mini App's initData is accepted after Telegram signed it (its `auth_date`):
    #: a copy of it (a shared screenshot of the devtools, a proxy log) opens nothing later.
    MINI_APP_INIT_DATA_MAX_AGE: int = Field(3600, ge=60, le=7 * 24 * 3600)

    @field_validator("TELEGRAM_BOT_TOKEN")
    @classmethod
    def _token_shape(cls, value: str) -> str:
        if value and not _TOKEN_RE.match(value):
            raise ValueError("must look like 123456:ABC… (the token BotFather gave)")
        return value

    @field_validator("TELEGRAM_WEBHOOK_SECRET")
    @classmethod
    def _secret_shape(cls, value: str) -> str:
        if value and not _SECRET_RE.match(value):
            raise ValueError("must be 16-256 characters of A-Z a-z 0-9 _ -")
        return value

    @field_validator(
        "PUBLIC_URL",
        "TELEGRAM_API_URL",
        "FAL_QUEUE_URL",
        "FAL_REST_URL",
        "FAL_RUN_URL",
        "FAL_OPENAPI_URL",
    )
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http(s):// URL")
        return value.rstrip("/")

    @field_validator("PUBLIC_URL")
    @classmethod
    def _public_url_https(cls, value: str) -> str:
        """Telegram's and fal's webhooks carry our secret header and per-job tokens: over plain
        http anyone on the path reads them. Only a loopback address (tests, the demo, a proxy
        on the same host) may do without TLS."""
        if value and not value.startswith("https://") and not _is_loopback(value):
            raise ValueError("must be an https:// URL (http only on a loopback address)")
        return value

    @field_validator("ADMIN_IDS")
    @classmethod
    def _admin_ids(cls, value: str) -> str:
        if any(not part.strip().lstrip("-").isdigit() for part in value.split(",") if part.strip()):
            raise ValueError("must be comma-separated Telegram user ids")
        return value

    @cached_property
    def admin_ids(self) -> frozenset[int]:
        return frozenset(int(p) for p in self.ADMIN_IDS.split(",") if p.strip())

    @property
    def telegram_webhook_url(self) -> str:
        return f"{self.PUBLIC_URL}/webhooks/telegram"

    @property
    def fal_webhook_url(self) -> str:
        return f"{self.PUBLIC_URL}/webhooks/fal"

    @property
    def mini_app_url(self) -> str:
        return f"{self.PUBLIC_URL}/app/"

    def secrets(self) -> list[str]:
        """Values that must never reach a log line, an error text or fal: the keys, and the
        passwords inside the database and Redis URLs (as written and percent-decoded, since
        a library may print either)."""
        values = [self.TELEGRAM_BOT_TOKEN, self.FAL_KEY, self.TELEGRAM_WEBHOOK_SECRET]
        values += url_passwords(self.DATABASE_URL) + url_passwords(self.REDIS_URL)
        return list(dict.fromkeys(s for s in values if s))


def url_passwords(url: str) -> list[str]:
    """The password of `scheme://user:password@host/…`, raw and decoded; none if it has none."""
    netloc = urlsplit(url).netloc
    userinfo, at, _ = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return []
    raw = userinfo.split(":", 1)[1]
    return [raw, unquote(raw)] if raw else []


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_config(kind: ProcessKind) -> Config:
    """Read the configuration and check that `kind` has what it needs."""
    try:
        config = Config()
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else "configuration"
        raise ConfigError(f"{name}: {error['msg'].removeprefix('Value error, ')}") from None
    missing = [name for name in REQUIRED[kind] if not getattr(config, name)]
    if missing:
        raise ConfigError(f"{missing[0]} is required (set it in the environment or .env)")
    return config
