"""The configuration contract: fixed names, one clear line for a bad value."""

from __future__ import annotations

import subprocess

import pytest

from core.config import ConfigError, load_settings
from sandbox.stack import KADR, TEST_SECRET, TEST_TOKEN

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
    settings = load_settings("api")
    assert settings.TELEGRAM_API_URL == "https://api.telegram.org"
    assert settings.DATABASE_URL == "sqlite+aiosqlite:///./data/kadr.db"
    assert settings.REDIS_URL == "redis://localhost:6379/0"
    assert settings.telegram_webhook_url == "https://bot.example.com/webhooks/telegram"
    assert settings.FREE_CREDITS_PER_DAY == 10


def test_dotenv_is_read(env: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ".env").write_text(
        "\n".join(f"{k}={v}" for k, v in GOOD.items()) + "\nADMIN_IDS=1, 2\n"
    )
    assert load_settings("worker").admin_ids == {1, 2}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TELEGRAM_BOT_TOKEN", "", "TELEGRAM_BOT_TOKEN is required"),
        ("TELEGRAM_BOT_TOKEN", "not-a-token", "TELEGRAM_BOT_TOKEN: must look like"),
        ("TELEGRAM_WEBHOOK_SECRET", "has spaces!", "TELEGRAM_WEBHOOK_SECRET: must be 1-256"),
        ("PUBLIC_URL", "bot.example.com", "PUBLIC_URL: must be an http(s):// URL"),
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
        load_settings("api")


def test_worker_needs_the_fal_key(env: pytest.MonkeyPatch) -> None:
    for key, good in GOOD.items():
        env.setenv(key, good)
    env.setenv("FAL_KEY", "")
    load_settings("api")
    with pytest.raises(ConfigError, match="FAL_KEY is required"):
        load_settings("worker")


def test_cli_prints_one_line_and_no_traceback(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"PATH": "/usr/bin:/bin", "TELEGRAM_BOT_TOKEN": "oops"}
    result = subprocess.run([*KADR, "api"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "kadr: configuration error: TELEGRAM_BOT_TOKEN: must look like 123456:ABC… "
        "(the token BotFather gave)"
    ]
    assert "Traceback" not in result.stdout + result.stderr
