"""Prometheus metrics kadr defines itself (HTTP request metrics come from the instrumentator)."""

from __future__ import annotations

from prometheus_client import Counter

TELEGRAM_UPDATES = Counter(
    "kadr_telegram_updates_total",
    "Telegram webhook updates by update type and outcome.",
    ["type", "outcome"],
)
