"""Secrets never reach a log line, even inside an exception's text."""

from __future__ import annotations

import logging

import pytest

from core.logs import RedactSecrets

TOKEN = "123456789:AAE-sandbox-token-0123456789abcdef"


def test_secrets_are_masked_in_messages_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.redact")
    caplog.handler.addFilter(RedactSecrets([TOKEN, "fal-key-secret"]))
    log.warning("GET https://api.telegram.org/file/bot%s/photo.jpg", TOKEN)
    try:
        raise RuntimeError(f"key fal-key-secret rejected for {TOKEN}")
    except RuntimeError:
        log.exception("upload failed")
    text = caplog.text
    assert TOKEN not in text
    assert "fal-key-secret" not in text
    assert "file/bot***/photo.jpg" in text
    assert "RuntimeError: key *** rejected" in text
