"""The configuration contract: fixed names, one clear line for a bad value."""

from __future__ import annotations

import pytest

from core.infra.config import ConfigError, load_config
from sandbox.stack import TEST_SECRET, TEST_TOKEN

GOOD = {
    "TELEGRAM_BOT_TOKEN": TEST_TOKEN,
    "TELEGRAM_WEBHOOK_SECRET": TEST_SECRET,
    "PUBLIC_URL": "https://bot.example.com/",
    "FAL_KEY": "k",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> pytest.MonkeyPatch:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    for name in [
        *GOOD,
        "TELEGRAM_API_URL",
        "DATABASE_URL",
        "REDIS_URL",
        "ADMIN_IDS",
        "FREE_CREDITS_PER_DAY",
    ]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_follow_the_contract(env: pytest.MonkeyPatch) -> None:
    for name, value in GOOD.items():
        env.setenv(name, value)
    config = load_config("api")
    assert config.TELEGRAM_API_URL == "https://api.telegram.org"
    assert config.DATABASE_URL == "sqlite+aiosqlite:///./data/kadr.db"
    assert config.REDIS_URL == "redis://localhost:6379/0"
    assert config.telegram_webhook_url == "https://bot.example.com/webhooks/telegram"
    assert config.FREE_CREDITS_PER_DAY == 10


def test_dotenv_is_read(env: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ".env").write_text(
        "\n".join(f"{k}={v}" for k, v in GOOD.items()) + "\nADMIN_IDS=1, 2\n"
    )
    assert load_config("worker").admin_ids == {1, 2}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TELEGRAM_BOT_TOKEN", "", "TELEGRAM_BOT_TOKEN is required"),
        ("TELEGRAM_BOT_TOKEN", "not-a-token", "TELEGRAM_BOT_TOKEN: must look like"),
        ("TELEGRAM_WEBHOOK_SECRET", "has spaces!", "TELEGRAM_WEBHOOK_SECRET: must be 16-256"),
        ("TELEGRAM_WEBHOOK_SECRET", "x" * 15, "TELEGRAM_WEBHOOK_SECRET: must be 16-256"),
        ("TELEGRAM_WEBHOOK_SECRET", "x" * 257, "TELEGRAM_WEBHOOK_SECRET: must be 16-256"),
        ("TELEGRAM_WEBHOOK_SECRET", "é" * 16, "TELEGRAM_WEBHOOK_SECRET: must be 16-256"),
        ("PUBLIC_URL", "bot.example.com", "PUBLIC_URL: must be an http(s):// URL"),
        ("PUBLIC_URL", "http://bot.example.com", "PUBLIC_URL: must be an https:// URL"),
        ("PUBLIC_URL", "http://10.0.0.5:8000", "PUBLIC_URL: must be an https:// URL"),
        ("PUBLIC_URL", "http://127.0.0.1.example.com", "PUBLIC_URL: must be an https:// URL"),
        ("ADMIN_IDS", "1,bob", "ADMIN_IDS: must be comma-separated"),
        ("FREE_CREDITS_PER_DAY", "-1", "FREE_CREDITS_PER_DAY: Input should be greater than"),
    ],
)
def test_bad_value_names_the_variable(
    env: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    for key, good in GOOD.items():
        env.setenv(key, good)
    env.setenv(name, value)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config("api")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://127.5.0.1", "http://[::1]:8000", "http://localhost"]
)
def test_plain_http_is_allowed_on_loopback_only(env: pytest.MonkeyPatch, url: str) -> None:
    for key, good in GOOD.items():
        env.setenv(key, good)
    env.setenv("PUBLIC_URL", url)
    config = load_config("api")
    assert url == config.PUBLIC_URL


def test_database_and_redis_passwords_are_secrets(env: pytest.MonkeyPatch) -> None:
    """They are masked in logs like the keys: raw, and decoded as a library may print them."""
    for key, good in GOOD.items():
        env.setenv(key, good)
    env.setenv("DATABASE_URL", "postgresql+asyncpg://kadr:pg%2Fsecret@db:5432/kadr")
    env.setenv("REDIS_URL", "redis://:redis-secret@cache:6379/0")
    secrets = load_config("api").secrets()
    assert {"pg%2Fsecret", "pg/secret", "redis-secret"} <= set(secrets)
    assert not [s for s in secrets if s in ("kadr", "db", "cache")]


def test_urls_without_a_password_add_no_secret(env: pytest.MonkeyPatch) -> None:
    for key, good in GOOD.items():
        env.setenv(key, good)
    env.setenv("DATABASE_URL", "postgresql+asyncpg://kadr@db/kadr")
    assert sorted(load_config("api").secrets()) == sorted([TEST_TOKEN, TEST_SECRET, "k"])


def test_worker_needs_the_fal_key(env: pytest.MonkeyPatch) -> None:
    for key, good in GOOD.items():
        env.setenv(key, good)
    env.setenv("FAL_KEY", "")
    load_config("api")
    with pytest.raises(ConfigError, match="FAL_KEY is required"):
        load_config("worker")
