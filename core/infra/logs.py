"""Logging set-up: one JSON object per line, the ids of what is being handled as fields, and
every configured secret masked.

Ids ride in a context variable (`log_fields`) rather than in each message, so a log search can
follow one update or one job across processes by field (`job_id`, `update_id`, `request_id`,
`user_id`) without parsing sentences. Libraries (aiohttp, httpx, uvicorn) may log URLs that
embed the bot token; rather than trust every call site, the formatter masks each configured
secret in the finished line.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

_MASK = "***"
_FIELDS: contextvars.ContextVar[dict[str, object]] = contextvars.ContextVar("log_fields")


@contextlib.contextmanager
def log_fields(**fields: object) -> Iterator[None]:
    """Every line logged inside carries these fields (on top of the enclosing ones)."""
    token = _FIELDS.set({**_FIELDS.get({}), **fields})
    try:
        yield
    finally:
        _FIELDS.reset(token)


class JsonFormatter(logging.Formatter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if len(s) >= 4]

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_FIELDS.get({}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        text = json.dumps(line, ensure_ascii=False, default=str)
        for secret in self._secrets:
            text = text.replace(secret, _MASK)
        return text


def setup_logging(level: str, secrets: list[str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "aiogram.event"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
