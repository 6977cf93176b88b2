"""Log lines as an operator's log search reads them: one JSON object each, the ids of what was
being handled as fields, and no secret anywhere, not even inside an exception's text."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from core.infra.config import Config
from core.infra.logs import JsonFormatter, log_fields

TOKEN = "123456789:AAE-sandbox-token-0123456789abcdef"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter([TOKEN, "fal-key-secret"]))
    log = logging.getLogger("test.logs")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield out
    log.removeHandler(handler)


def records(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_secrets_are_masked_in_messages_and_tracebacks(lines: io.StringIO) -> None:
    log = logging.getLogger("test.logs")
    log.warning("GET https://api.telegram.org/file/bot%s/photo.jpg", TOKEN)
    try:
        raise RuntimeError(f"key fal-key-secret rejected for {TOKEN}")
    except RuntimeError:
        log.exception("upload failed")
    text = lines.getvalue()
    assert TOKEN not in text
    assert "fal-key-secret" not in text
    first, second = records(lines)
    assert first["message"] == "GET https://api.telegram.org/file/bot***/photo.jpg"
    assert "RuntimeError: key *** rejected" in str(second["exception"])


def test_ids_are_fields_of_every_line_logged_inside(lines: io.StringIO) -> None:
    log = logging.getLogger("test.logs")
    with log_fields(update_id=7, user_id=42):
        log.info("handling")
        with log_fields(job_id="j-1"):
            log.info("job made")
    log.info("outside")
    handling, made, outside = records(lines)
    assert (handling["update_id"], handling["user_id"], handling["level"]) == (7, 42, "INFO")
    assert (made["update_id"], made["job_id"], made["message"]) == (7, "j-1", "job made")
    assert "update_id" not in outside and outside["logger"] == "test.logs"


def test_a_database_password_is_masked_in_a_logged_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://kadr:pg-secret-1@db/kadr")
    secrets = Config(_env_file=None).secrets()  # type: ignore[call-arg]
    record = logging.LogRecord(
        "test", logging.ERROR, "", 0, "cannot connect to %s", ("kadr:pg-secret-1@db/kadr",), None
    )
    line = json.loads(JsonFormatter(secrets).format(record))
    assert line["message"] == "cannot connect to kadr:***@db/kadr"
